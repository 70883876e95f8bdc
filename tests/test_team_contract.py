"""The team contract: a spec and its record in git are the experiment, in any clone, from any folder.

Projects are laid out as users lay them out (`specs/x.yaml` beside `data/`), in real git repos,
driven through the CLI with the fast fake stages (same keys as the real ones).
"""
from __future__ import annotations

import json
import shutil
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.stages import STAGES
from projects import SPEC, git, make_project, plan_json, ran


# -- portable keys and records ---------------------------------------------------------------------

def test_clone_at_another_path_finds_every_stage_cached_with_the_same_keys(project, tmp_path, capsys, fakes):
    assert main(["run", "specs/x.yaml"]) == 0
    record_text = (project / "specs" / "x.lock.json").read_text()
    assert str(tmp_path) not in record_text  # no machine path in the record
    labels = json.loads(record_text)["nodes"]["data"]["payload"]["inputs"]
    assert list(labels) == ["data/train.txt"]  # relative to the project root, not to the spec
    git(project, "add", "-A")
    git(project, "commit", "-qm", "experiment")
    clone = tmp_path / "elsewhere" / "deeper" / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    os.chdir(clone / "specs")  # and from a subfolder, with a spec path relative to it
    before = plan_json(capsys, "x.yaml")
    ran(fakes)
    assert {s["action"] for s in before.values()} == {"cached"}
    assert {n: s["key"] for n, s in before.items()} == {n: v["key"] for n, v in json.loads(record_text)["nodes"].items()}
    assert main(["run", "x.yaml"]) == 0
    assert ran(fakes) == []
    assert (clone / "specs" / "x.lock.json").read_text() == record_text


def test_a_rebuild_under_the_recorded_keys_leaves_the_committed_record_alone(project, tmp_path, fakes):
    """A teammate's fresh clone has an empty store: `engine run` rebuilds every stage under the keys
    the record holds, and the committed record stays as it was (git status clean); --force
    records the rebuild."""
    assert main(["run", "specs/x.yaml"]) == 0
    path = project / "specs" / "x.lock.json"
    record = json.loads(path.read_text())
    record["nodes"]["train"]["wall_s"] = 1234.5  # as measured on the author's machine
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    committed = path.read_text()
    shutil.rmtree(Path(os.environ["ENGINE_STORE"]))
    assert main(["run", "specs/x.yaml"]) == 0
    assert "train" in ran(fakes) and path.read_text() == committed
    assert main(["run", "specs/x.yaml", "--force", "train"]) == 0
    assert json.loads(path.read_text())["nodes"]["train"]["wall_s"] != 1234.5


# Keys of the spec above on fixed inputs, with library versions pinned. A change here without a
# VERSION bump of the stage means every user's cache silently misses (or, worse, hits wrongly).
GOLDEN = {
    ("model", 1): "379b6c8b09bda170fae1ddb4cd92092c6744c7477b7e9bf90316abb51430ced4",
    ("data", 2): "0baaa5fdd86712d954e34515f92c40ca620758bebe1092ff697bb6dc72e8a378",
    ("train", 1): "cb83d2786c116c1e30d223ec367b12d563d05b12e7061143bb384bd761cee08a",
    ("evaluate", 1): "dcaa9003a35b03937b95f2a9fc0ed54806f810db70f3deac1ceb35aeb1114cad",
    ("generate", 2): "9d47a5f8989f924029c0a12f53864691c70b3d5c8f3c91dfa46005de77e3a766",
}


def test_golden_keys_change_only_with_a_version_bump(project, capsys, monkeypatch):
    import engine.core.plan as plan_module

    monkeypatch.setattr(plan_module, "library_versions", lambda names: {n: "1.0" for n in names})
    assert main(["run", "specs/x.yaml"]) == 0  # data's key needs the model's (fake) tokenizer digest
    keys = {(n, STAGES[s["kind"]].VERSION): s["key"] for n, s in plan_json(capsys).items()}
    missing = {k: v for k, v in keys.items() if k not in GOLDEN}
    assert not missing, f"a stage VERSION changed: record the new golden keys {missing}"
    assert keys == GOLDEN, "a key changed without a VERSION bump of its stage"


def test_input_outside_the_project_needs_the_operator(project, tmp_path, capsys, monkeypatch, fakes):
    outside = tmp_path / "secrets"
    outside.mkdir()
    (outside / "train.txt").write_text("private\n")
    (project / "data" / "train.txt").unlink()
    (project / "data" / "train.txt").symlink_to(outside / "train.txt")
    assert main(["plan", "specs/x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "data/train.txt is outside the project" in err and "symlink" in err and "--allow-outside-project" in err
    assert main(["run", "specs/x.yaml"]) == 2
    assert ran(fakes) == []
    assert main(["run", "specs/x.yaml", "--allow-outside-project"]) == 0
    record = (project / "specs" / "x.lock.json").read_text()
    assert str(tmp_path) not in record
    monkeypatch.setenv("ENGINE_ALLOW_OUTSIDE_PROJECT", "1")
    (project / "specs" / "y.yaml").write_text(SPEC.replace("../data/train.txt", "../../secrets/train.txt"))
    assert main(["run", "specs/y.yaml"]) == 0
    labels = json.loads((project / "specs" / "y.lock.json").read_text())["nodes"]["data"]["payload"]["inputs"]
    assert list(labels) == ["../secrets/train.txt"]


def test_a_set_run_leaves_the_spec_record_alone(project, capsys, fakes):
    assert main(["run", "specs/x.yaml"]) == 0
    record = project / "specs" / "x.lock.json"
    before = record.read_bytes()
    ran(fakes)
    capsys.readouterr()
    assert main(["run", "specs/x.yaml", "--set", "train.learning_rate=1e-4"]) == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert ran(fakes) == ["train", "evaluate", "generate"]
    assert record.read_bytes() == before
    assert "was left alone" in out
    assert {s["action"] for s in plan_json(capsys).values()} == {"cached"}  # the spec's own outputs
    capsys.readouterr()
    assert main(["show", "specs/x.yaml", "--set", "train.learning_rate=1e-4", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["overrides"] == ["train.learning_rate=1e-4"] and shown["status"] == "current"
    assert shown["nodes"]["train"]["payload"]["params"]["train"]["learning_rate"] == 1e-4
    assert main(["show", "specs/x.yaml", "--set", "train.learning_rate=3e-4"]) == 1
    assert "no record for specs/x.yaml with these --set values" in capsys.readouterr().err


def test_show_says_when_the_record_is_out_of_date_and_prints_whole_paths(project, capsys, monkeypatch):
    assert main(["run", "specs/x.yaml"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["show", "specs/x.yaml"]) == 0
    out = capsys.readouterr().out
    assert "out of date" not in out
    trains = [line for line in out.splitlines() if line.strip().startswith("train:")]
    assert len(trains) == 1 and Path(trains[0].split(":", 1)[1].strip()).is_dir()  # whole, at 60 columns
    (project / "specs" / "x.yaml").write_text(SPEC.replace("5.0e-5", "1.0e-4"))
    assert main(["show", "specs/x.yaml"]) == 0
    out = capsys.readouterr().out
    assert "out of date: train, evaluate, generate" in out
    assert main(["show", "specs/x.yaml", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["nodes"]["model"]["status"] == "current" and shown["nodes"]["train"]["status"] == "out of date"


def test_show_and_plan_name_a_library_that_moved_and_what_to_do(project, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    path = project / "specs" / "x.lock.json"
    record = json.loads(path.read_text())
    built = {name: node["key"] for name, node in record["nodes"].items()}
    installed = record["nodes"]["train"]["payload"]["libraries"]["accelerate"]
    for node in record["nodes"].values():
        if "accelerate" in node["payload"]["libraries"]:
            node["payload"]["libraries"]["accelerate"] = "0.1"
            node["key"] = "0" * 64  # as a record made under accelerate 0.1 would have it
    path.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["show", "specs/x.yaml"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"train: accelerate 0.1 -> {installed}" in out, out
    assert f"the record was made with accelerate 0.1; this environment has accelerate {installed}" in out
    assert "make install" in out
    assert main(["show", "specs/x.yaml", "--json"]) == 0
    reasons = json.loads(capsys.readouterr().out)["nodes"]["train"]["reasons"]
    assert {"kind": "library", "name": "accelerate", "old": "0.1", "new": installed} in reasons
    for name in ("train", "evaluate", "generate"):  # not cached: plan says why train runs, and what to do
        shutil.rmtree(Path(os.environ["ENGINE_STORE"]) / "store" / built[name][:2] / built[name])
    assert main(["plan", "specs/x.yaml"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"accelerate 0.1 -> {installed}" in out and "make install" in out, out


def test_store_stays_out_of_git_and_is_private(tmp_path, fakes, monkeypatch):
    root = make_project(tmp_path / "p")
    monkeypatch.delenv("ENGINE_STORE")
    monkeypatch.chdir(root / "specs")
    assert main(["run", "x.yaml"]) == 0
    assert (root / ".engine" / "store").is_dir()  # at the project root, not beside the spec
    assert (root / ".engine").stat().st_mode & 0o777 == 0o700
    git(root, "add", "-A")
    assert ".engine" not in git(root, "status", "--porcelain")


@pytest.mark.parametrize("reader", ["head -1", "true"])  # `true` leaves before a byte is written
@pytest.mark.parametrize("command", ["schema", "show specs/x.yaml", "cache ls"])
def test_piping_into_head_ends_without_a_traceback(project, reader, command):
    assert main(["run", "specs/x.yaml"]) == 0
    out = subprocess.run(f"{sys.executable} -m engine {command} | {reader}; echo \"exit ${{PIPESTATUS[0]}}\"",
                         shell=True, executable="/bin/bash", cwd=project, capture_output=True, text=True)
    assert "Traceback" not in out.stderr and "Exception" not in out.stderr, out.stderr
    assert out.stdout.split()[-1] in ("0", "1", "141"), out.stderr  # rich exits 1 on a broken pipe


def test_a_base_spec_outside_the_project_needs_the_operator(project, tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(SPEC)
    (project / "specs" / "z.yaml").write_text("extends: ../../base.yaml\nname: z\n")
    assert main(["validate", "specs/z.yaml"]) == 2
    err = capsys.readouterr().err
    assert "specs/z.yaml:1:10  $.extends  ../../base.yaml is outside the project" in err
    assert main(["validate", "specs/z.yaml", "--allow-outside-project"]) == 0


def test_a_symlink_inside_a_model_folder_may_not_point_outside(project, tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (project / "models" / "base" / "vocab.txt").symlink_to(secret)
    assert main(["plan", "specs/x.yaml"]) == 2
    assert "models/base/vocab.txt is outside the project" in capsys.readouterr().err
    assert main(["plan", "specs/x.yaml", "--allow-outside-project"]) == 0


def test_a_hub_revision_cannot_walk_out_of_the_cache(project, capsys):
    (project / "specs" / "h.yaml").write_text(SPEC.replace("path: ../models/base", "hub: a/b\n  revision: ../../../../etc/hostname"))
    assert main(["plan", "specs/h.yaml"]) == 2
    assert "$.model.revision  must match the pattern" in capsys.readouterr().err


def test_dot_dot_after_a_symlink_resolves_like_the_kernel(project, tmp_path, capsys):
    outside = tmp_path / "elsewhere" / "deep"
    outside.mkdir(parents=True)
    (tmp_path / "elsewhere" / "train.txt").write_text("private\n")
    (project / "data" / "link").symlink_to(outside)
    # lexically data/link/../train.txt is data/train.txt (inside); the kernel reads elsewhere/train.txt
    (project / "specs" / "y.yaml").write_text(SPEC.replace("../data/train.txt", "../data/link/../train.txt"))
    assert main(["plan", "specs/y.yaml"]) == 2
    assert "is outside the project" in capsys.readouterr().err


def _locked_versions() -> dict[str, str]:
    """{package: major.minor} of requirements.lock, and torch's from the Makefile (outside the lock:
    its CPU and CUDA builds are different files)."""
    import re

    from conftest import REPO

    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\d+\.\d+)", (REPO / "requirements.lock").read_text(), re.M))
    pins["torch"] = re.search(r"^TORCH_VERSION := (\d+\.\d+)", (REPO / "Makefile").read_text(), re.M).group(1)
    return {name.lower(): version for name, version in pins.items()}


def _shipped_records():
    from conftest import REPO

    for spec in sorted((REPO / "specs").glob("*.yaml")):
        record = spec.with_name(spec.stem + ".lock.json")
        if record.exists():
            yield spec, json.loads(record.read_text())


def test_the_example_records_were_made_under_the_lock():
    """Every library version in a shipped record's keys is the locked one: refreshing the lock
    (`make lock`) without re-running the examples fails here."""
    locked = _locked_versions()
    for spec, record in _shipped_records():
        for name, node in record["nodes"].items():
            for lib, version in node["payload"]["libraries"].items():
                assert locked.get(lib) == version, f"{spec.name} {name}: {lib} {version} recorded, {locked.get(lib)} locked"


def test_the_example_records_are_current(tmp_path, monkeypatch, capsys):
    """Under the locked environment every shipped record matches the key its spec gives today
    (keys only, nothing trained): a key change without re-recording the examples (or a VERSION
    bump) fails here, not in a user's first run."""
    from engine.core.payload import library_versions
    from engine.corpora import clipart

    locked = _locked_versions()
    keyed = sorted({lib for _, record in _shipped_records() for node in record["nodes"].values()
                    for lib in node["payload"]["libraries"]})
    other = {lib: (locked.get(lib), v) for lib, v in library_versions(tuple(keyed)).items() if v != locked.get(lib)}
    if other:
        pytest.skip(f"this environment is not the locked one ({other}): `make install` installs requirements.lock")
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "empty-store"))
    for spec, _ in _shipped_records():
        if "corpus: clipart-drawings" in spec.read_text() and clipart.PACKAGE.version() == "absent":
            continue  # a Debian package the machine lacks (tests/test_drawings.py skips, saying how to install it)
        capsys.readouterr()
        assert main(["show", str(spec), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["status"] == "current", (spec.name, {n: v.get("reasons") for n, v in shown["nodes"].items()})
