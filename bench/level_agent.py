"""How often does MarioGPT's A* agent win real Super Mario Bros windows? (engine/checks/mario_agent.py)

Random windows of the mario-gpt corpus (seeded), each played by the agent as the `level` check
plays a sample (padded at both ends, Mario on the first column's highest floor, a lost window
played once more); prints wins, mean completion (of the window's own columns), the rule-based
reachability verdict for comparison, and the seconds per window. With `--run-up K` each window
is played with the K corpus columns before it (fewer at the corpus's start; the same windows
for every K), as the original player reached it (the check does
not do this; the option measures whether it would help). Needs Java; measure on a quiet machine
(the agent searches in real time, and its verdicts change while other jobs share the cores).
    .venv/bin/python bench/level_agent.py [--width 24] [--windows 40] [--seed 0] [--run-up 0]
"""
import argparse
import random
import time

from engine.checks import levels, mario_agent
from engine.corpora import mario_levels

parser = argparse.ArgumentParser()
parser.add_argument("--width", type=int, default=24)
parser.add_argument("--windows", type=int, default=40)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--run-up", type=int, default=0, help="corpus columns played before each window")
options = parser.parse_args()

width, run_up = options.width, options.run_up
rows = mario_levels.grid(mario_levels.files({})[0])
starts = random.Random(options.seed).sample(range(len(rows[0]) - width), options.windows)
started = time.perf_counter()
played = [mario_agent.play([row[max(0, s - run_up):s + width] for row in rows]) for s in starts]
seconds = (time.perf_counter() - started) / len(starts)
rules = [levels.playable(mario_levels.to_columns(rows, s, width).splitlines()) for s in starts]
verdicts = [p for p in played if "failed" not in p]  # a play that ran past TIMEOUT or printed nothing is {"failed": why}
won = sum(p["won"] for p in verdicts)
print(f"{width}-column windows, run-up {run_up}: the agent won {won} of {len(starts)}, "
      f"gave no verdict on {len(played) - len(verdicts)}; "
      f"mean completion {sum(p['completion'] for p in verdicts) / len(starts):.3f}; "
      f"the rules passed {sum(rules)}; {seconds:.2f} s a window")
print("lost or no verdict at corpus columns:", [s for s, p in zip(starts, played) if not p.get("won")])
