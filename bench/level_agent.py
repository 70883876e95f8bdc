"""How often does MarioGPT's A* agent win real Super Mario Bros windows? (engine/checks/mario_agent.py)

40 random windows of 24 columns of the mario-gpt corpus (seeded), each played by the agent as the
`level` check plays a sample (padded at both ends, Mario on the first column's highest floor, a
lost window played once more); prints wins, mean completion (of the window's own columns), the
rule-based reachability verdict for comparison, and the seconds per window. Needs Java; measure
on a quiet machine (the agent searches in real time).
    .venv/bin/python bench/level_agent.py [WIDTH]
"""
import random
import sys
import time

from engine.checks import levels, mario_agent
from engine.corpora import mario_levels

width = int(sys.argv[1]) if len(sys.argv) > 1 else 24
rows = mario_levels.grid(mario_levels.files({})[0])
starts = random.Random(0).sample(range(len(rows[0]) - width), 40)
started = time.perf_counter()
played = [mario_agent.play([row[s:s + width] for row in rows]) for s in starts]
seconds = (time.perf_counter() - started) / len(starts)
rules = [levels.playable(mario_levels.to_columns(rows, s, width).splitlines()) for s in starts]
verdicts = [p for p in played if "failed" not in p]  # a play that ran past TIMEOUT or printed nothing is {"failed": why}
won = sum(p["won"] for p in verdicts)
print(f"{width}-column windows: the agent won {won} of {len(starts)}, gave no verdict on {len(played) - len(verdicts)}; "
      f"mean completion {sum(p['completion'] for p in verdicts) / len(starts):.3f}; "
      f"the rules passed {sum(rules)}; {seconds:.2f} s a window")
