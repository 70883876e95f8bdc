"""Shared fixtures: every test gets its own store and runs offline."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def corpus_or_skip(read):
    """What `read()` gives, or a skip where the package holding the corpus is not installed."""
    from engine.errors import StageError

    try:
        return read()
    except StageError as exc:
        pytest.skip(str(exc))

# Offline before anything imports huggingface_hub (which reads these once, at import).
for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_name] = "1"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def write(tmp_path):
    """write("name.yaml", text) -> Path; text is dedented."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


MINIMAL = """\
spec_version: 1
name: tiny
model:
  builtin: smollm2-135m
data:
  source: {files: data.txt}
"""


@pytest.fixture
def fakes(tmp_path, monkeypatch) -> Path:
    """The fast fake stages (tests/fake_stages.py, same keys as the real ones) in place of the real
    ones for this test; the log they append each built stage's name to (read it with projects.ran)."""
    import fake_stages
    from engine.stages import STAGES

    log = tmp_path / "runs.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    for kind in list(STAGES):
        monkeypatch.setitem(STAGES, kind, STAGES[kind])
    fake_stages.install()
    return log


@pytest.fixture
def project(tmp_path, fakes, monkeypatch) -> Path:
    """A team project (projects.make_project) in tmp_path/team, run with the fake stages; the
    working directory."""
    from projects import make_project

    root = make_project(tmp_path / "team")
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer GPT-2 with a 300-token BPE, saved once per test session (tests copy it)."""
    from tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-model")


@pytest.fixture
def scenes_project(tmp_path, tiny_model) -> Path:
    """A project folder with 40 screenplay-like records in data/scenes.jsonl and a copy of the tiny
    model in tiny-model/ (a copy: a spec reads only inside its project); the working directory."""
    import shutil

    from tiny import screenplay_records, write_jsonl

    root = tmp_path / "project"
    write_jsonl(root / "data" / "scenes.jsonl", screenplay_records(40))
    shutil.copytree(tiny_model, root / "tiny-model")
    os.chdir(root)
    return root
