"""How often does MarioGPT's A* agent win real Super Mario Bros windows? (engine/checks/mario_agent.py)

Random windows of the mario-gpt corpus (seeded), each played by the agent as the `level` check
plays a sample (padded at both ends, Mario on the first column's highest floor, a lost window
played once more); prints wins, mean completion (of the window's own columns), the rule-based
reachability verdict for comparison, and the seconds per window.

With `--run-up K` each window is played with the K corpus columns before it (fewer at the
corpus's start; the same windows for every K), as the original player came to it. The check does
not do this; the option measures whether it would help. The corpus is every level joined into one
grid, so near a level's start the run-up is the end of the level before. The rules then judge the
same columns the agent played.

Needs Java; measure on a quiet machine (the agent searches in real time, and its verdicts change
while other jobs share the cores: the 40 windows of seed 0 are won 36 times, 35 on a busy machine).
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


def window_share(completion: float, played: int, width: int) -> float:
    """The agent's completion over the `played` columns as the share of the last `width` (the window's)."""
    column = completion * (played - 1) - (played - width)
    return min(1.0, max(0.0, column / max(1, width - 1)))


width = options.width
rows = mario_levels.grid(mario_levels.files({})[0])
# the last start is never drawn; kept so that seed 0 draws the windows every earlier measurement played
starts = random.Random(options.seed).sample(range(len(rows[0]) - width), options.windows)
firsts = [max(0, s - options.run_up) for s in starts]
started = time.perf_counter()
played = [mario_agent.play([row[first:s + width] for row in rows]) for first, s in zip(firsts, starts)]
seconds = (time.perf_counter() - started) / len(starts)
rules = [levels.playable(mario_levels.to_columns(rows, first, s + width - first).splitlines())
         for first, s in zip(firsts, starts)]
verdicts = [(p, s + width - first) for p, first, s in zip(played, firsts, starts) if "failed" not in p]
won = sum(p["won"] for p, _ in verdicts)  # a play that ran past TIMEOUT or printed nothing is {"failed": why}
completion = sum(window_share(p["completion"], length, width) for p, length in verdicts) / len(starts)
print(f"{width}-column windows, run-up {options.run_up}: the agent won {won} of {len(starts)}, "
      f"gave no verdict on {len(played) - len(verdicts)}; mean completion {completion:.3f}; "
      f"the rules passed {sum(rules)}; {seconds:.2f} s a window")
print("lost or no verdict at corpus columns:", [s for s, p in zip(starts, played) if not p.get("won")])
