"""`engine reproduce` (a stored stage rebuilt in a scratch store, compared file by file and metric
by metric) and `engine bisect` (the commit that moved a metric), on tiny projects."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.cli import main
from projects import git
from tiny import PATH_MODEL, spec_text


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD").strip()


def store_listing(store: Path) -> dict[str, float]:
    """Every entry folder of the store, with its manifest's mtime: reproduce must add or change none."""
    return {m.parent.name: m.stat().st_mtime for m in (store / "store").rglob("manifest.json")}


def entry_of(store: Path, key: str) -> Path:
    return store / "store" / key[:2] / key


# -- reproduce -----------------------------------------------------------------------------------

@pytest.fixture
def trained(scenes_project, tmp_path):
    """The tiny spec (no generate stage) run once: its record and store."""
    text = spec_text(PATH_MODEL)
    (scenes_project / "spec.yaml").write_text(text[:text.index("generate:")] + "runtime: {device: cpu}\n")
    assert main(["run", "spec.yaml"]) == 0
    return scenes_project


def test_reproduce_reports_identical_for_a_deterministic_spec_and_touches_nothing(trained, tmp_path):
    from engine.app.reproducing import reproduce

    store = tmp_path / "store"
    before, record = store_listing(store), (trained / "spec.lock.json").read_bytes()
    (tmp_path / "scratch").mkdir()
    found = reproduce("spec.yaml", scratch=tmp_path / "scratch")
    assert [c.stage for c in found.stages] == ["model", "data", "train", "evaluate"]
    assert found.identical, json.dumps(found.as_json(), indent=1)
    train = next(c for c in found.stages if c.stage == "train")
    assert train.against == "record" and train.deterministic is None  # no second rebuild when identical
    assert train.comparison.timing_only == ["log_history.json"]  # the Trainer's runtimes differ; nothing else
    assert store_listing(store) == before and (trained / "spec.lock.json").read_bytes() == record
    assert not list((tmp_path / "scratch").iterdir())  # the scratch stores are removed


def test_reproduce_names_the_file_and_metric_altered_in_the_store(trained, tmp_path, capsys):
    store, nodes = tmp_path / "store", json.loads((trained / "spec.lock.json").read_text())["nodes"]
    # evaluate's entry rewritten whole, as another build would have made it: metrics.json and its manifest agree
    entry = entry_of(store, nodes["evaluate"]["key"])
    metrics_file = entry / "out" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["loss"] += 0.25
    metrics_file.write_text(json.dumps(metrics, indent=1, sort_keys=True))
    manifest = json.loads((entry / "manifest.json").read_text())
    import hashlib

    st = metrics_file.stat()
    manifest["files"]["metrics.json"] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                         "sha256": hashlib.sha256(metrics_file.read_bytes()).hexdigest()}
    manifest["result"]["metrics"]["loss"] += 0.25
    (entry / "manifest.json").write_text(json.dumps(manifest))
    # the record's train metric edited by hand, and one byte of the trained weights flipped (mtime kept)
    record = json.loads((trained / "spec.lock.json").read_text())
    record["nodes"]["train"]["metrics"]["final_loss"] += 0.5
    record["nodes"]["evaluate"]["metrics"]["loss"] += 0.25  # the evaluate entry's run recorded it so
    (trained / "spec.lock.json").write_text(json.dumps(record, indent=2))
    weights = entry_of(store, nodes["train"]["key"]) / "out" / "model" / "model.safetensors"
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))

    capsys.readouterr()
    assert main(["reproduce", "spec.yaml", "--stage", "train", "--stage", "evaluate"]) == 1
    out = capsys.readouterr().out
    assert "train: DIFFERS from the record" in out and "evaluate: DIFFERS from the record" in out
    assert "file model/model.safetensors: damaged" in out
    assert "metric final_loss" in out and "cause: record differs from its entry" in out
    assert "file metrics.json: differs: loss" in out and "metric loss" in out, out
    assert "cause: none visible" in out  # two rebuilds here agree with each other, not with the store
    assert "not reproduced: 0 of 2 stages identical" in out

    assert main(["reproduce", "spec.yaml", "--stage", "evaluate", "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    evaluate = found["stages"][0]
    assert evaluate["deterministic"]["metrics"][0]["metric"] == "loss"
    assert evaluate["first"]["metrics"][0]["delta"] == pytest.approx(-0.25)


def test_reproduce_says_what_is_missing(trained, capsys):
    capsys.readouterr()
    assert main(["reproduce", "spec.yaml", "--stage", "generate"]) == 2
    assert "--stage generate: no such stage" in capsys.readouterr().err
    (trained / "spec.yaml").write_text((trained / "spec.yaml").read_text().replace("max_steps: 6", "max_steps: 5"))
    assert main(["reproduce", "spec.yaml", "--stage", "train"]) == 2
    assert "the store has no entry for its key" in capsys.readouterr().err


def test_reproduce_names_an_unseeded_step(project, monkeypatch, capsys):
    """A stage that draws from an unseeded generator: two rebuilds differ from each other too."""
    from engine.stages import STAGES

    real = STAGES["generate"].run

    def unseeded(ctx):
        result = real(ctx)
        (ctx.out / "samples.jsonl").write_text(json.dumps({"completion": os.urandom(8).hex()}) + "\n")
        return result

    monkeypatch.setattr(STAGES["generate"], "run", unseeded)
    assert main(["run", "specs/x.yaml"]) == 0
    capsys.readouterr()
    assert main(["reproduce", "specs/x.yaml", "--stage", "generate"]) == 1
    out = capsys.readouterr().out
    assert "file samples.jsonl: differs" in out and "cause: unseeded step" in out
    assert main(["reproduce", "specs/x.yaml", "--stage", "train"]) == 0  # the fake train is deterministic


def test_causes_read_from_the_entries_facts_the_record_and_the_rebuilds():
    from engine.core.entry import Entry
    from engine.review.reproduction import causes

    def entry(**facts):
        return Entry("k", Path("."), {"result": {"facts": facts}})

    stored, here = entry(device="cuda", precision="bf16"), entry(device="cpu", precision="fp32")
    named = causes(stored, here, False, here, False, True, 1, {"torch": ("2.12", "2.13")})
    assert [c["cause"] for c in named] == ["device or dtype", "library versions"]
    assert "device cuda -> cpu" in named[0]["detail"] and "torch 2.12 (now 2.13)" in named[1]["detail"]
    same = entry(device="cpu")
    assert [c["cause"] for c in causes(same, same, False, same, True, False, 4, {})] == \
        ["nondeterministic kernels", "thread count"]  # the deterministic rebuild matches: kernels, threads
    assert [c["cause"] for c in causes(same, same, False, same, False, False, 1, {})] == ["unseeded step"]
    assert [c["cause"] for c in causes(same, same, False, same, False, True, 1, {})] == ["none visible"]
    assert causes(same, same, True, None, None, None, 1, {}) == []


# -- bisect --------------------------------------------------------------------------------------

def test_search_skips_what_cannot_be_evaluated():
    from engine.review.bisection import search

    answers = {0: False, 1: False, 2: None, 3: False, 4: True, 5: True}
    asked = []

    def probe(i):
        asked.append(i)
        return answers[i]

    assert search(6, probe) == (4, [])  # the skipped 2 is before the last good commit: not a suspect
    assert asked == [2, 1, 3, 4]  # a skipped probe's nearest neighbour is asked instead
    answers = {0: False, 1: None, 2: True}
    assert search(3, lambda i: answers[i]) == (2, [1])  # 2, or the skipped 1 before it
    assert search(1, lambda i: pytest.fail("nothing to probe")) == (0, [])


@pytest.fixture
def history(scenes_project, tmp_path):
    """Five commits of a tiny spec (model, data, train): c3 changes train.learning_rate, c4 touches
    only a README; records committed at c1 and c5, then the store emptied (a fresh clone's)."""
    root = scenes_project
    text = spec_text(PATH_MODEL)
    (root / "spec.yaml").write_text(text[:text.index("evaluate:")] + "runtime: {device: cpu}\n")
    (root / ".gitignore").write_text(".engine/\n")
    git(root, "init", "-q")
    assert main(["run", "spec.yaml"]) == 0
    shas = [commit(root, "c1 the spec and its record")]
    spec = root / "spec.yaml"
    spec.write_text(spec.read_text().replace("name: tiny-e2e", "name: tiny-e2e\ndescription: a tiny run"))
    shas.append(commit(root, "c2 a description"))
    spec.write_text(spec.read_text().replace("learning_rate: 1.0e-3", "learning_rate: 5.0e-3"))
    shas.append(commit(root, "c3 a higher learning rate"))
    (root / "README").write_text("notes\n")
    shas.append(commit(root, "c4 a README"))
    spec.write_text(spec.read_text().replace("log_every: 1", "log_every: 2"))
    assert main(["run", "spec.yaml"]) == 0
    shas.append(commit(root, "c5 log every 2 steps, and its record"))
    import shutil

    shutil.rmtree(tmp_path / "store")
    return root, shas


def test_bisect_finds_the_learning_rate_commit_building_only_that_probe(history, tmp_path):
    from engine.app.bisecting import bisect

    root, shas = history
    seen = []
    found = bisect("spec.yaml", "train.final_loss", shas[0], shas[4], on_probe=seen.append)
    assert found.candidates == 3  # c2, c3, c5: the README commit touches nothing the spec reads
    assert found.culprit.commit == shas[2] and not found.maybe
    assert [(p.commit, p.how) for p in seen] == [(shas[0], "record"), (shas[4], "record"), (shas[1], "record"),
                                                (shas[2], "built")]
    assert seen[3].built == ["model", "data", "train"] and found.built == 3
    assert seen[3].value == pytest.approx(found.bad.value)  # c3's loss is c5's: log_every is not in the key
    assert [c.path for c in found.diff.changes.fields] == ["train.learning_rate"]
    assert git(root, "worktree", "list").count("\n") == 1  # the scratch worktree is gone
    assert git(root, "status", "--porcelain") == ""  # nothing written in the project: records stay as committed

    again = bisect("spec.yaml", "train.final_loss", shas[0], shas[4])  # the probe's build is in the store now
    assert again.culprit.commit == shas[2] and again.built == 0
    assert [p.how for p in again.probes] == ["record", "record", "record", "cached"]


def test_bisect_through_the_cli_skips_a_broken_commit(project, capsys, monkeypatch):
    """Fake stages (their loss follows their params): c2 breaks the spec, c3 changes the learning rate."""
    monkeypatch.setenv("FAKE_LOSS", "1")
    (project / ".gitignore").write_text(".engine/\n")
    assert main(["run", "specs/x.yaml"]) == 0
    good = commit(project, "c1 first")
    spec = project / "specs" / "x.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("epochs: 1", "epochs: 1\n  learning_rat: 1"))
    commit(project, "c2 a typo")
    spec.write_text(text.replace("learning_rate: 5.0e-5", "learning_rate: 1.0e-4"))
    culprit = commit(project, "c3 the learning rate")
    capsys.readouterr()
    assert main(["bisect", "specs/x.yaml", "--metric", "train.loss", "--good", good, "--bad", "HEAD"]) == 0
    out = capsys.readouterr()
    assert "c2 a typo" in out.err and "skipped" in out.err and "learning_rat" in out.err
    assert f"first commit where train.loss moved: {culprit[:12]} c3 the learning rate" in out.out
    assert "or one of these skipped commits before it" in out.out
    assert "train.learning_rate" in out.out and "5e-05" in out.out

    assert main(["bisect", "specs/x.yaml", "--metric", "train.loss", "--good", good, "--bad", "HEAD",
                 "--threshold", "10"]) == 1
    assert "did not move past the threshold" in capsys.readouterr().out
    assert main(["bisect", "specs/x.yaml", "--metric", "nope.loss", "--good", good, "--bad", "HEAD"]) == 2
    assert "--metric nope.loss: expected STAGE.METRIC" in capsys.readouterr().err


def test_bisect_removes_its_worktree_on_ctrl_c(project, monkeypatch):
    """A probe that builds is interrupted: the scratch worktree and its folder are gone afterwards."""
    import engine.app.running as running
    from engine.app.bisecting import bisect

    monkeypatch.setenv("FAKE_LOSS", "1")
    (project / ".gitignore").write_text(".engine/\n")
    assert main(["run", "specs/x.yaml"]) == 0
    good = commit(project, "c1 first")
    spec = project / "specs" / "x.yaml"
    spec.write_text(spec.read_text().replace("learning_rate: 5.0e-5", "learning_rate: 1.0e-4"))
    commit(project, "c2 the learning rate")
    spec.write_text(spec.read_text().replace("learning_rate: 1.0e-4", "learning_rate: 2.0e-4"))
    commit(project, "c3 more")
    made = []

    def interrupted(p, reporter=None, **kwargs):
        made.append(p.spec.path.parents[1])
        raise KeyboardInterrupt

    monkeypatch.setattr(running, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bisect("specs/x.yaml", "train.loss", good, "HEAD")
    assert made and "engine-bisect-" in str(made[0]) and not made[0].exists()
    assert git(project, "worktree", "list").count("\n") == 1
