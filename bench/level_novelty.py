"""How novel are real held-out Mario windows by the level check's identity? (engine/checks/level_novelty.py)

Windows of 24 columns (stride 4) of the mario-gpt corpus; 3 whole 200-column segments held out,
the rest the training windows; 30 held-out windows, their columns after the first 4 (a prompt's
worth) measured against the training windows. Prints the identities and the share >= the copy line.
    .venv/bin/python bench/level_novelty.py
"""
import random

from engine.checks import level_novelty
from engine.corpora import mario_levels

records = [fields for fields, _ in mario_levels.records({"width": 24, "stride": 4})]
segments = sorted({r["segment"] for r in records})
held = set(random.Random(0).sample(segments, 3))
windows = level_novelty.Windows([r["text"].splitlines() for r in records if r["segment"] not in held])
chosen = random.Random(1).sample([r["text"].splitlines() for r in records if r["segment"] in held], 30)
identities = sorted(windows.identity(columns[4:]) for columns in chosen)
print("identities:", " ".join(f"{x:.2f}" for x in identities))
print(f"copies (>= {level_novelty.COPY_IDENTITY}): {sum(x >= level_novelty.COPY_IDENTITY for x in identities)} of {len(identities)}")
