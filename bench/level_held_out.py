"""The `level` check on every held-out window of a spec's data, not the 32 that `metrics.reference` draws.

Reads the data and model stages of a spec run before (`engine run SPEC` first), takes every window
of its held-out split as engine/checks/reference.py decodes them, and judges each as the check
judges a sample: one at a time by default (`--at-once 2` as the generate stage plays them).
Prints the playable share (won by the agent, or passed by the rules where the agent gave no
verdict), the windows that are not, and the time. Overlapping windows of one hard stretch of a
level fall in the same split, so a rate from 32 of them swings by several points; this is the
steadier number.

With `--run-up K` each window is found in the mario-gpt corpus and played with the K columns
before it, as a prompt: the check does not do this; the option measures whether it would help.

Needs Java and a quiet machine (the agent searches in real time).
    .venv/bin/python bench/level_held_out.py specs/mario-levels.yaml [--at-once 1] [--run-up 0]
"""
import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from transformers import AutoTokenizer

from engine.app.show import show
from engine.checks import levels
from engine.checks.reference import held_out_items
from engine.corpora import mario_levels

parser = argparse.ArgumentParser()
parser.add_argument("spec")
parser.add_argument("--at-once", type=int, default=1, help=f"levels played at once (the check plays {levels.AGENTS})")
parser.add_argument("--run-up", type=int, default=0, help="corpus columns played before each window")
options = parser.parse_args()

shown = show(options.spec)
outputs = {name: node.get("output") for name, node in shown.nodes}
if not outputs.get("data") or not outputs.get("model"):
    sys.exit(f"the data and model stages of {options.spec} are not in the store: run `engine run {options.spec}` first")
split, rows = held_out_items(Path(outputs["data"]).parent, AutoTokenizer.from_pretrained(outputs["model"]), 10 ** 6, 0)

if options.run_up:
    grid = mario_levels.grid(mario_levels.files({})[0])
    corpus = [mario_levels.to_columns(grid, c, 1) for c in range(len(grid[0]))]
    joined = "\n".join(corpus)
    for row in rows:
        found = joined.find(row["completion"])
        if found >= 0:
            start = joined.count("\n", 0, found)
            row["prompt"] = "".join(column + "\n" for column in corpus[max(0, start - options.run_up):start])

levels.AGENTS = options.at_once
started = time.perf_counter()
metrics = levels.run(rows, SimpleNamespace(data=None))  # no training windows: identity is not measured here
seconds = time.perf_counter() - started
lost = [(row["item"], row["level"].get("judge", "not well formed"), row["level"]["completion"])
        for row in rows if not row["level"]["playable"]]
print(f"{len(rows)} {split} windows, {options.at_once} at once, run-up {options.run_up}: "
      f"playable {metrics['level_playable_rate']:.2f}, mean completion {metrics['level_completion']:.3f}; "
      f"{seconds:.0f} s")
print("not playable (item, judge, completion):", lost)
