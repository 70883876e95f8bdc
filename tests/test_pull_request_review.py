"""`engine review --base REV`: the pull-request check, in a team project in git (tests/projects.py)
with the fake stages: which specs a change touches, what reruns and why, at what recorded cost,
and whether the committed record is current (`--fail-on stale`)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from engine.app.pull_request import MARKER, review
from engine.cli import main
from projects import entries, git


@pytest.fixture
def team(project, monkeypatch):
    monkeypatch.setenv("FAKE_LOSS", "1")  # the fake stages report a `loss` (evaluate.loss is a headline number)
    git(project, "checkout", "-q", "-b", "main")
    return project


def commit(root, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def edit(root, old: str, new: str, spec: str = "specs/x.yaml") -> None:
    path = root / spec
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def set_wall_times(root, **walls: float) -> None:
    """Give the committed record the wall times of a real run (the fake stages take no time)."""
    path = root / "specs" / "x.lock.json"
    record = json.loads(path.read_text())
    for node, wall in walls.items():
        record["nodes"][node]["wall_s"] = wall
    path.write_text(json.dumps(record, indent=1))


@pytest.fixture
def ran_then_changed(team, capsys):
    """x.yaml run and committed with its record; then train.learning_rate changed and committed
    without running it (the record at HEAD is the old one)."""
    assert main(["run", "specs/x.yaml"]) == 0
    set_wall_times(team, train=169.0, evaluate=28.0, generate=354.0)
    commit(team, "x at 5e-5")
    edit(team, "learning_rate: 5.0e-5", "learning_rate: 1.0e-4")
    commit(team, "x at 1e-4, not run")
    capsys.readouterr()
    return team


def markdown(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["review", "--base", "HEAD~1", "--markdown", *args]) == 0
    return capsys.readouterr().out


def test_review_lists_the_changed_field_what_reruns_and_a_record_that_was_not_rerun(ran_then_changed, capsys):
    out = markdown(capsys)
    assert out.startswith(MARKER + "\n## engine review: `")
    assert "| `specs/x.yaml` | 1 field, 0 inputs changed | train, evaluate, generate | 9 min 11 s | ⚠️ out of date: " \
           "train, evaluate, generate |" in out
    assert "**record out of date: train, evaluate, generate; `engine run specs/x.yaml` and commit its record**" in out
    assert "| `train.learning_rate` | `5e-05` | `0.0001` | train, evaluate, generate |" in out
    assert "Stays cached: model, data." in out
    assert "**Would rerun** (about 9 min 11 s by the recorded wall times):" in out
    assert "| train | train.learning_rate 5e-05 -> 0.0001 | 2 min 49 s |" in out
    assert "| evaluate | upstream train will run | 28 s |" in out and "| generate | upstream train will run | 5 min 54 s |" in out
    assert re.search(r"\| `evaluate.loss` \| 0\.\d+ \| out of date \| - \|", out)  # head's record is not its result
    assert "value" not in out  # the headline numbers only (`engine diff` shows every one)

    assert main(["review", "--base", "HEAD~1", "--fail-on", "stale"]) == 1
    assert "1 changed spec(s) with a record that is not current at HEAD: specs/x.yaml" in capsys.readouterr().err


def test_fail_on_stale_passes_once_the_record_is_rerun_and_shows_base_to_head(ran_then_changed, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(ran_then_changed, "x at 1e-4, run")
    capsys.readouterr()
    assert main(["review", "--base", "HEAD~2", "--fail-on", "stale"]) == 0
    capsys.readouterr()
    assert main(["review", "--base", "HEAD~2", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "1 spec changed; every record is current." in out and "| ✅ current |" in out
    assert re.search(r"\| `evaluate.loss` \| 0\.\d+ \| 0\.\d+ \| [+-]0\.\d+ \([+-]\d+\.\d%\) \|", out)  # both current
    assert "| train | train.learning_rate 5e-05 -> 0.0001 |" in out  # what reruns is from BASE, whatever the store holds


def test_a_comment_only_change_reruns_nothing_and_passes(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x")
    edit(team, "  learning_rate: 5.0e-5\n", "  learning_rate: 0.00005   # the same number, spelled out\n")
    commit(team, "a comment")
    out = markdown(capsys, "--fail-on", "stale")
    assert "| `specs/x.yaml` | no change to the resolved spec or its inputs | nothing | - | ✅ current |" in out
    assert "No change to the resolved spec or the files it reads: every stage stays cached." in out
    assert "Would rerun" not in out


def test_an_unrelated_change_lists_no_spec(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x")
    (team / "notes.txt").write_text("not an input of any spec\n")
    commit(team, "notes")
    assert "No spec, base spec, input file or record changed: nothing reruns." in markdown(capsys, "--fail-on", "stale")


def test_a_changed_input_file_and_the_working_tree_as_head(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x")
    (team / "data" / "train.txt").write_text("ACT I. A new first scene.\n")  # not committed: head is the working tree
    capsys.readouterr()
    assert main(["review", "--base", "HEAD", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "→ the working tree" in out
    assert "| `data/train.txt` | changed |" in out and "| data | input data/train.txt changed |" in out
    assert main(["review", "--base", "HEAD", "--head", "HEAD"]) == 0  # the commit itself: nothing changed
    assert "nothing reruns" in capsys.readouterr().out


def test_a_new_spec_that_was_never_run_reads_not_run(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x")
    (team / "specs" / "y.yaml").write_text((team / "specs" / "x.yaml").read_text().replace("5.0e-5", "2.0e-4"))
    commit(team, "y, not run")
    out = markdown(capsys)
    assert "| `specs/y.yaml` | new spec | model, data, train, evaluate, generate |" in out and "⚠️ no record |" in out
    assert "**not run: no record; `engine run specs/y.yaml` and commit its record**" in out
    assert "specs/x.yaml" not in out
    assert main(["review", "--base", "HEAD~1", "--fail-on", "stale"]) == 1


FINETUNE = """\
spec_version: 1
name: finetune
seed: 1
model: {from: x.yaml}
data:
  source: {files: ../data/train.txt}
train: {learning_rate: 1.0e-5, epochs: 1}
"""


def test_a_changed_base_lists_the_specs_that_extend_it_or_start_from_it(team, capsys):
    (team / "specs" / "y.yaml").write_text("extends: x.yaml\nname: why\ngenerate: {prompts: [Twice]}\n")  # no spec_version
    (team / "specs" / "finetune.yaml").write_text(FINETUNE)
    for spec in ("x", "y", "finetune"):
        assert main(["run", f"specs/{spec}.yaml"]) == 0
    commit(team, "three specs, run")
    edit(team, "learning_rate: 5.0e-5", "learning_rate: 1.0e-4")  # x alone is edited
    commit(team, "x at 1e-4")
    found = {item.path: item for item in review("HEAD~1").specs}
    assert sorted(found) == ["specs/finetune.yaml", "specs/x.yaml", "specs/y.yaml"]
    assert [f.path for f in found["specs/y.yaml"].changes.fields] == ["train.learning_rate"]  # through extends
    assert [r.stage for r in found["specs/finetune.yaml"].reruns][:2] == ["scenes:train", "model"]  # through model.from
    assert found["specs/finetune.yaml"].reruns[1].reasons == [{"kind": "upstream", "stages": ["scenes:train"],
                                                               "change": "will run"}]
    assert all(item.stale for item in found.values())


def test_the_estimate_scales_the_recorded_training_time_by_a_changed_epoch_count(team):
    assert main(["run", "specs/x.yaml"]) == 0
    set_wall_times(team, train=60.0, evaluate=10.0, generate=5.0)
    commit(team, "x, one epoch")
    edit(team, "epochs: 1", "epochs: 3")
    commit(team, "x, three epochs")
    [item] = review("HEAD~1").specs
    assert [(r.stage, r.wall_s) for r in item.reruns] == [("train", 180.0), ("evaluate", 10.0), ("generate", 5.0)]


def test_review_through_the_app(ran_then_changed):
    found = review("HEAD~1")
    [item] = found.specs
    assert item.path == "specs/x.yaml" and item.stale and found.stale == [item]
    assert [(r.stage, r.wall_s) for r in item.reruns] == [("train", 169.0), ("evaluate", 28.0), ("generate", 354.0)]
    assert item.reruns[0].reasons == [{"kind": "field", "field": "train.learning_rate", "old": 5e-05, "new": 0.0001}]
    assert item.cost_s == 551.0 and found.head_commit is None
    data = found.as_json()
    assert data["stale"] == ["specs/x.yaml"] and data["specs"][0]["estimated_s"] == 551.0


def test_a_base_that_is_not_a_commit_is_a_usage_error(team, capsys):
    commit(team, "x")
    assert main(["review", "--base", "no-such-branch"]) == 2
    assert "--base no-such-branch: not a commit of this repository" in capsys.readouterr().err


def test_an_input_outside_the_project_is_not_read(team, capsys, tmp_path):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x")
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    edit(team, "files: ../data/train.txt", "files: ../../secret.txt")
    commit(team, "reads outside")
    out = markdown(capsys)
    assert "HEAD: its input files cannot be read" in out and "../secret.txt is outside the project" in out
    assert "**record standing unknown: its input files cannot be read (see the notes)**" in out
    assert "| data | data.source.files '../data/train.txt' -> '../../secret.txt' |" in out  # inputs unknown: not "removed"
    assert "TOP SECRET" not in out
    assert main(["review", "--base", "HEAD~1", "--fail-on", "stale"]) == 1


SAFE_CHECK = """
import pickle, sys
def refuse(*args, **kwargs):
    raise AssertionError("engine review loaded a pickle")
pickle.load = pickle.loads = refuse
pickle.Unpickler = refuse
from engine.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "transformers", "datasets", "peft", "accelerate", "safetensors") if m in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy) or "none")
"""


def test_review_imports_no_heavy_library_loads_no_pickle_and_runs_no_stage(ran_then_changed, tmp_path):
    before = entries(tmp_path / "store")
    out = subprocess.run([sys.executable, "-c", SAFE_CHECK, "review", "--base", "HEAD~1", "--markdown"],
                         cwd=ran_then_changed, capture_output=True, text=True, env={**os.environ})
    assert "EXIT 0 HEAVY none" in out.stdout, out.stdout + out.stderr  # the real stages: running one imports torch
    assert "| `train.learning_rate` |" in out.stdout
    assert entries(tmp_path / "store") == before  # nothing built


def test_the_shipped_workflow_runs_review_on_pull_request_and_updates_one_comment():
    from ruamel.yaml import YAML

    from conftest import REPO

    text = (REPO / "docs" / "examples" / "engine-review.yml").read_text()
    flow = YAML(typ="safe").load(text)
    assert list(flow["on"]) == ["pull_request"] and "pull_request_target" not in text.replace(
        "not `pull_request_target`", "").replace("`pull_request_target` would", "")
    assert flow["permissions"] == {"contents": "read", "pull-requests": "write"}
    steps = flow["jobs"]["review"]["steps"]
    assert steps[0]["with"] == {"fetch-depth": 0, "persist-credentials": False}
    [review_step] = [s for s in steps if s.get("id") == "review"]
    assert "engine review --base \"${{ github.event.pull_request.base.sha }}\" --markdown --fail-on stale" in review_step["run"]
    assert f'startswith("{MARKER}")' in text and "--method PATCH" in text
