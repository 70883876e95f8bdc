"""The `level` check on every held-out window of a spec's data, not the 32 that `metrics.reference` draws.

Reads the data and model stages of a spec run before (`engine run SPEC` first), takes every window
of its held-out split as engine/checks/reference.py decodes them, and plays each as the check plays
a sample: one at a time by default (`--at-once 2` as the generate stage plays them). Prints the
won share, the windows lost or left without a verdict, and the time. Overlapping windows of one
hard stretch of a level fall in the same split, so a rate from 32 of them swings by several
points; this is the steadier number. Needs Java and a quiet machine (the agent searches in real
time).
    .venv/bin/python bench/level_held_out.py specs/mario-levels.yaml [--at-once 1]
"""
import argparse
import time
from pathlib import Path

from transformers import AutoTokenizer

from engine.app.show import show
from engine.checks import levels
from engine.checks.reference import held_out_items

parser = argparse.ArgumentParser()
parser.add_argument("spec")
parser.add_argument("--at-once", type=int, default=1, help="levels played at once (the check plays %d)" % levels.AGENTS)
options = parser.parse_args()

outputs = {name: node["output"] for name, node in show(options.spec).nodes}
data, model = Path(outputs["data"]).parent, outputs["model"]
split, rows = held_out_items(data, AutoTokenizer.from_pretrained(model), 10 ** 6, 0)


class NoTrainingData:  # identity to the training windows is not measured here
    data = None


levels.AGENTS = options.at_once
started = time.perf_counter()
metrics = levels.run(rows, NoTrainingData())
seconds = time.perf_counter() - started
lost = [(row["item"], row["level"]["judge"], row["level"]["completion"]) for row in rows if not row["level"]["playable"]]
print(f"{len(rows)} {split} windows, {options.at_once} at once: won or passed {metrics['level_playable_rate']:.2f}, "
      f"mean completion {metrics['level_completion']:.3f}; {seconds:.0f} s")
print("not playable (item, judge, completion):", lost)
