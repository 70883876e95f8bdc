"""Projects as users lay them out (`specs/x.yaml` beside `data/` and `models/`, in a real git
repo), and the CLI driven over them: in this process through `main([...])`, or in a subprocess
with the fast fake stages (tests/fake_stages.py, same keys as the real ones). The `project` and
`fakes` fixtures (tests/conftest.py) build on these."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.cli import main

TESTS = Path(__file__).resolve().parent

SPEC = """\
spec_version: 1
name: scenes
seed: 1
model:
  path: ../models/base
data:
  source: {files: ../data/train.txt}
train:
  learning_rate: 5.0e-5
  epochs: 1
evaluate: {split: test}
generate:
  prompts: ["Once"]
"""

# A spec on a builtin model with its data beside it (specs/data.txt): it plans and diffs with no
# model files at all.
BUILTIN_SPEC = """\
spec_version: 1
name: scenes
model: {builtin: smollm2-135m}
data:
  source: {files: data.txt}
train:
  learning_rate: 5.0e-5
generate:
  prompts: ["# ACT I"]
  temperature: 0.8
"""


def git(root: Path, *args: str) -> str:
    """Run git in `root` as a fixed author; its output."""
    out = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                         env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                              "GIT_COMMITTER_EMAIL": "t@t"})
    return out.stdout


def make_project(root: Path) -> Path:
    """specs/x.yaml (SPEC), data/train.txt and a stand-in model in models/base, in a new git repo."""
    (root / "specs").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "train.txt").write_text("ACT I. Scene one.\n\nACT II. Scene two.\n\nACT III. Scene three.\n")
    (root / "models" / "base").mkdir(parents=True)
    (root / "models" / "base" / "config.json").write_text("{}")
    (root / "models" / "base" / "model.safetensors").write_bytes(b"weights")
    (root / "specs" / "x.yaml").write_text(SPEC)
    git(root, "init", "-q")
    return root


def write_sweep(project: Path, text: str, name: str = "s.yaml") -> str:
    """specs/<name>: the project's x.yaml (less its evaluate stage), named `sweep`, plus `text`."""
    base = (project / "specs" / "x.yaml").read_text().replace("evaluate: {split: test}\n", "")
    (project / "specs" / name).write_text(base.replace("name: scenes", "name: sweep") + text)
    return f"specs/{name}"


def ran(log: Path) -> list[str]:
    """The stages the fake stages built since the last call (the `fakes` fixture's log), in order."""
    names = log.read_text().split() if log.exists() else []
    log.write_text("")
    return names


def plan_json(capsys, spec="specs/x.yaml", *args) -> dict:
    """`engine plan --json`, by stage name."""
    capsys.readouterr()
    assert main(["plan", spec, "--json", *args]) == 0
    return {s["stage"]: s for s in json.loads(capsys.readouterr().out)}


def errors_of(capsys, path, *extra) -> list[str]:
    """The located problems `engine validate` reports (exit 2, no traceback), one per line."""
    code = main(["validate", str(path), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return [line.strip() for line in err.splitlines()[1:]]


def entries(store_root: Path) -> dict[str, str]:
    """node -> key of every entry in the store."""
    return {json.loads(m.read_text())["node"]: m.parent.name for m in (store_root / "store").rglob("manifest.json")}


def engine(cwd: Path, *args: str, **env) -> subprocess.Popen:
    """The CLI with fake stages, in a subprocess."""
    return subprocess.Popen([sys.executable, str(TESTS / "fake_stages.py"), *args], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(TESTS), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


TRAIN_COMMAND = [sys.executable, "-m", "engine", "run", "spec.yaml", "--until", "train"]


def sigterm_at_first_checkpoint(project: Path, store: Path, wait_s: float, finish_s: float) -> tuple[int, str]:
    """Run `engine run spec.yaml --until train` in `project` with `store` as its store, send it
    SIGTERM once its first checkpoint is complete (failing the test when training ends first or
    takes longer than `wait_s`), and return its exit code and stderr."""
    import signal
    import time

    import pytest

    env = {**os.environ, "ENGINE_STORE": str(store)}
    proc = subprocess.Popen(TRAIN_COMMAND, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + wait_s
    while not list((store / "work").glob("*/checkpoints/checkpoint-*/ENGINE_COMPLETE")):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"training ended before its first checkpoint: {proc.communicate()[1]}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=finish_s)
    return proc.returncode, err
