"""Runs of the report's spec with the fast fake stages, their store entries filled by hand with
what the fakes do not write (a training log, samples): the pages that `engine report` draws."""
from __future__ import annotations

import json
from pathlib import Path

from engine.cli import main

SPEC = """\
spec_version: 1
name: scenes
description: A <b>bold</b> experiment
seed: 1
model:
  path: ../models/base
data:
  source: {files: ../data/train.txt}
train:
  learning_rate: 5.0e-5
  epochs: 1
evaluate: {split: test, baseline: true}
generate:
  prompts: ["Once"]
  baseline: true
"""
HISTORY = [{"loss": 3.0, "learning_rate": 1e-4, "step": 1}, {"loss": 2.5, "learning_rate": 5e-5, "step": 2},
           {"eval_loss": 2.7, "step": 2}, {"train_loss": 2.7, "step": 2}]


def samples(*completions: str, **checks) -> list[dict]:
    return [{"prompt_index": 0, "sample": i, "prompt": "Once", "completion": c, "new_tokens": 5, **checks}
            for i, c in enumerate(completions)]


def out_dir(project: Path, spec: str, node: str) -> Path:
    key = json.loads((project / "specs" / f"{spec}.lock.json").read_text())["nodes"][node]["key"]
    return project / ".." / "store" / "store" / key[:2] / key / "out"


def put(project: Path, spec: str, node: str, name: str, rows) -> None:
    path = out_dir(project, spec, node) / name
    text = "".join(json.dumps(r) + "\n" for r in rows) if name.endswith(".jsonl") else json.dumps(rows)
    path.write_text(text, encoding="utf-8")


def run_and_fill(project: Path, name: str = "r", text: str = SPEC) -> str:
    (project / "specs" / f"{name}.yaml").write_text(text)
    assert main(["run", f"specs/{name}.yaml"]) == 0
    put(project, name, "train", "log_history.json", HISTORY)
    put(project, name, "generate[baseline]", "samples.jsonl", samples("the before text", "<script>alert(1)</script>"))
    put(project, name, "generate", "samples.jsonl",
        samples("upon a time the after text", "more after", copy_span=6, copy_passage="upon a",
                play_format={"follows_format": False, "turns": 3}))
    return f"specs/{name}.yaml"


TUNE = "X: 1\nT: A Test Reel\nM: 4/4\nL: 1/8\nK:D\n"
TUNES_SPEC = SPEC.replace("name: scenes", "name: tunes").replace('prompts: ["Once"]', 'prompts: ["X: 1"]\n  checks: [abc]')


def run_tunes(project: Path) -> str:
    """A spec whose samples get the `abc` check: one baseline sample abcjs cannot draw (a blank
    line ends a tune: it has headers and no notes), one that it can, and two fine-tuned tunes."""
    (project / "specs" / "t.yaml").write_text(TUNES_SPEC)
    assert main(["run", "specs/t.yaml"]) == 0
    def rows(*completions: str) -> list[dict]:
        abc = {"parses": True, "has_headers": True, "complete_bars": False}
        return [dict(row, prompt=TUNE, abc=abc) for row in samples(*completions)]

    put(project, "t", "generate[baseline]", "samples.jsonl", rows("\nnot a tune", "ab|c<d>e|"))
    put(project, "t", "generate", "samples.jsonl",
        rows("|:d2fd A2FA|d2fd e2ce|d2fd A2FA|B2AF E2D2:|", "GABc dedB|dBAG FAdB|AGFE D4|]"))
    return "specs/t.yaml"
