"""The application layer (engine/app/): every command as a library function, without argparse.

Each function takes plain values and returns a result object; these tests read the objects, never
printed text. The projects use the fast fake stages (tests/fake_stages.py, same keys as the real
ones); `project` and `fakes` are the shared fixtures of tests/conftest.py.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.app import cache, outputs, review, specs, transfer
from engine.app.experiment import open_experiment, open_store
from engine.app.running import plan, prepare_run, run, run_json
from engine.app.show import show
from engine.errors import EngineError, SpecError, UsageError
from projects import entries, ran

SPEC = "specs/x.yaml"
STAGES = ["model", "data", "train", "evaluate", "generate"]


def _run(spec: str = SPEC, overrides=()):
    outcome = run(plan(spec, list(overrides)))
    assert outcome.ok
    return outcome


def _edit(project: Path, old: str, new: str, spec: str = SPEC) -> None:
    path = project / spec
    path.write_text(path.read_text().replace(old, new))


# -- opening an experiment: one rule for the store and the record file -----------------------------

def test_an_experiment_knows_its_store_record_file_record_and_statuses(project, tmp_path, fakes):
    e = open_experiment(SPEC)
    assert e.store.root == tmp_path / "store"  # $ENGINE_STORE (the tests' autouse fixture)
    assert e.record_file == project / "specs" / "x.lock.json" and e.record is None
    assert e.label == "specs/x.yaml"
    assert list(e.graph.order) == STAGES
    assert {s.state for s in e.statuses().values()} == {"not run"}
    _run()
    again = open_experiment(SPEC)
    assert set(again.record["nodes"]) == set(STAGES)
    assert {s.state for s in again.statuses().values()} == {"current"}


def test_a_set_run_has_its_own_record_in_the_store(project, tmp_path, fakes):
    e = open_experiment(SPEC, ["train.epochs=3"])
    assert e.record_file.parent == tmp_path / "store" / "runs" and e.record is None
    _run(overrides=["train.epochs=3"])
    assert open_experiment(SPEC, ["train.epochs=3"]).record["overrides"] == ["train.epochs=3"]
    assert not (project / "specs" / "x.lock.json").exists()  # the spec's own record is left alone


def test_the_default_store_is_at_the_project_root_whether_named_by_a_spec_or_the_current_folder(project, monkeypatch):
    monkeypatch.delenv("ENGINE_STORE")
    assert open_store(None, project / "specs").root == project / ".engine"
    os.chdir(project / "specs")
    assert open_store().root == project / ".engine"  # a command without a spec: the current folder's project
    assert open_experiment("x.yaml").store.root == project / ".engine"
    assert open_store("elsewhere").root == project / "specs" / "elsewhere"


# -- plan and run ----------------------------------------------------------------------------------

def test_a_fully_cached_run_opens_no_remote_and_no_executor(project, fakes, monkeypatch):
    _run()
    ran(fakes)
    monkeypatch.setenv("ENGINE_REMOTE", "unreachable-protocol://nowhere")  # would fail if it were opened
    p = plan(SPEC)
    assert not p.builds()
    launch = prepare_run(p, executor="ray")  # no Ray is started either
    assert launch.link is None and launch.executor is None and launch.summary() is None
    outcome = run(p, launch=launch)
    assert outcome.ok and outcome.result.ran == [] and ran(fakes) == []
    assert run_json(outcome, launch)["pulled"] == [] and set(run_json(outcome, launch)["stages"]) == set(STAGES)


def test_prepare_run_refuses_an_address_without_ray(project):
    with pytest.raises(UsageError, match="--address is the Ray cluster of --executor ray"):
        prepare_run(plan(SPEC), address="auto")


def test_a_plan_names_the_remote_it_would_pull_from_without_its_password(project, monkeypatch):
    p = plan(SPEC, ["train.epochs=2"])
    assert p.library_drift() == {} and p.remote_shown() is None
    assert p.spec_record_file() == project / "specs" / "x.lock.json" != p.record_file
    monkeypatch.setenv("ENGINE_REMOTE", "sftp://ann:secret@host/engine")
    assert p.remote_shown() == "sftp://ann:***@host/engine"


# -- show ------------------------------------------------------------------------------------------

def test_show_without_a_record_names_the_command_that_makes_one(project):
    with pytest.raises(EngineError, match=r"no record for specs/x.yaml .*run `engine run specs/x.yaml` first"):
        show(SPEC)


def test_show_returns_the_record_with_each_stage_state_and_output(project, fakes):
    _run()
    shown = show(SPEC)
    assert shown.current and shown.state == "current" and shown.not_run == [] and shown.ranking is None
    assert [name for name, _ in shown.nodes] == STAGES  # pipeline order
    assert all(Path(node["output"]).exists() for _, node in shown.nodes)
    assert shown.as_json()["status"] == "current"
    assert shown.as_json()["record_file"] == str(project / "specs" / "x.lock.json")
    _edit(project, "learning_rate: 5.0e-5", "learning_rate: 1.0e-4")
    stale = show(SPEC)
    assert not stale.current and stale.record["nodes"]["train"]["status"] == "out of date"
    assert stale.why("train") == "train.learning_rate 5e-05 -> 0.0001"
    assert stale.library_drift() == {}


# -- diff and compare ------------------------------------------------------------------------------

def test_diff_returns_the_changes_and_what_they_rerun(project, fakes):
    (project / "specs" / "y.yaml").write_text((project / SPEC).read_text().replace("epochs: 1", "epochs: 2"))
    found = review.diff(SPEC, "specs/y.yaml")
    assert not found.empty and found.inputs_compared
    changes = found.as_json()["changes"]
    assert changes == [{"field": "train.epochs", "old": 1, "new": 2, "reruns": ["train", "evaluate", "generate"]}]
    assert "`train.epochs`" in found.markdown()
    assert review.diff(SPEC, SPEC).empty
    assert review.diff(SPEC, SPEC, overrides=["train.epochs=2"]).as_json()["changes"] == changes


def test_compare_returns_the_runs_side_by_side(project, fakes):
    (project / "specs" / "y.yaml").write_text((project / SPEC).read_text().replace("epochs: 1", "epochs: 2"))
    _run()
    found = review.compare([SPEC, "specs/y.yaml"])
    assert found.ranking is None and [side.label for side in found.sides] == [SPEC, "specs/y.yaml"]
    assert [side.standing() for side in found.sides] == ["current", "no record"]
    with pytest.raises(UsageError, match="give exactly one SPEC"):
        review.compare([SPEC, "specs/y.yaml"], revs=["HEAD"])


# -- report and export -----------------------------------------------------------------------------

def test_report_writes_one_page(project, fakes, tmp_path):
    _run()
    done = outputs.report([SPEC], tmp_path / "page.html")
    assert done.path == tmp_path / "page.html" and done.bytes == done.path.stat().st_size > 1000
    assert "specs/x.yaml" in done.path.read_text()


def test_export_is_refused_for_a_stage_that_is_not_current(project, fakes, tmp_path):
    with pytest.raises(UsageError, match="train is not current"):
        outputs.export(SPEC, tmp_path / "out")
    with pytest.raises(UsageError, match="--stage data: it holds no model"):
        outputs.export(SPEC, tmp_path / "out", stage="data")


# -- the cache: ls, gc, verify ---------------------------------------------------------------------

def test_ls_and_gc_return_what_they_found(project, fakes, tmp_path):
    _run()
    _edit(project, 'prompts: ["Once"]', 'prompts: ["Twice"]')
    _run()  # the first generate entry is no longer in the record
    store, rows = cache.ls()
    assert store.root == tmp_path / "store" and len(rows) == 6
    assert {r.stage for r in rows} == set(STAGES) and all(r.bytes > 0 for r in rows)
    with pytest.raises(UsageError, match="is not this project's"):
        cache.gc()  # $ENGINE_STORE is not the project's own .engine/: records must be named
    young = cache.gc(records=["."])
    assert young.removed == [] and young.kept_young == 1 and young.referenced == 5
    dry = cache.gc(records=["."], grace=0, dry_run=True)
    assert [(r.stage, r.why) for r in dry.removed] == [("generate", "no record references it")]
    assert len(cache.ls()[1]) == 6  # a dry run removes nothing
    done = cache.gc(records=["."], grace=0)
    assert done.freed == done.removed[0].bytes > 0 and len(cache.ls()[1]) == 5


def test_gc_stops_on_a_record_it_cannot_read(project, fakes):
    _run()
    (project / "specs" / "broken.lock.json").write_text("{")
    with pytest.raises(EngineError, match="cannot read these records"):
        cache.gc(records=["."], grace=0)
    assert len(cache.ls()[1]) == 5


def test_gc_keeps_what_the_history_names_and_says_so_before_removing(project, fakes, tmp_path):
    from projects import git

    git(project, "checkout", "-q", "-b", "main")
    _run()
    git(project, "add", "-A"), git(project, "commit", "-qm", "first")
    _edit(project, "learning_rate: 5.0e-5", "learning_rate: 1.0e-4")
    _run()
    git(project, "add", "-A"), git(project, "commit", "-qm", "second")
    told = []
    kept = cache.gc(records=["."], grace=0, on_keep=lambda found: told.append((found.kept, list(found.removed))))
    assert told == [(8, [])] and kept.removed == []  # told before anything went
    [history] = kept.history
    assert (history.tips, history.branch, history.recent, history.records) == (["main"], "main", 2, 2)
    assert kept.referenced == 8 and kept.outside_git == []
    dropped = cache.gc(records=["."], grace=0, keep_commits=0, dry_run=True)
    assert sorted(r.stage for r in dropped.removed) == ["evaluate", "generate", "train"] and dropped.kept == 5
    assert cache.gc(records=["."], grace=0, all_commits=True, dry_run=True).history[0].every == 2


def test_verify_moves_a_damaged_entry_aside_and_notes_a_changed_input(project, fakes, tmp_path):
    _run()
    key = entries(tmp_path / "store")["generate"]
    target = tmp_path / "store" / "store" / key[:2] / key / "out" / "params.json"
    st = target.stat()
    target.write_text(target.read_text().replace("Once", "Onc3"))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # invisible to the quick check
    (project / "data" / "train.txt").write_text("ACT IV.\n")
    found = cache.verify()
    assert not found.ok and found.entries == 5
    assert [(d.key, d.stage) for d in found.damaged] == [(key, "generate")]
    assert found.damaged[0].moved_to.parent == tmp_path / "store" / "corrupt"
    assert found.changed_inputs == [("data/train.txt", "x.lock.json", "data")] and found.records == 1
    assert cache.verify().ok  # moved aside: the store holds no damaged entry now


def test_the_store_verifies_and_quarantines_an_entry(project, fakes, tmp_path):
    _run()
    store = open_store()
    entry, _ = store.check(entries(tmp_path / "store")["model"])
    assert store.verify_or_quarantine(entry).entry == entry
    (entry.out / "stray.txt").write_text("not in the manifest")
    damaged = store.verify_or_quarantine(entry)
    assert damaged.entry is None and damaged.problems == ["stray.txt: not in manifest"]
    assert (damaged.moved_to / "REASON").read_text() == "stray.txt: not in manifest\n"
    assert store.check(entry.key) == (None, None)


# -- push and pull ---------------------------------------------------------------------------------

class _Seen:
    """A transfer.Progress that remembers what it was told."""

    def __init__(self):
        self.calls: list[str] = []
        self.items: list[dict] = []
        self.bytes = 0

    def start(self, verb):
        self.calls.append(verb)

    def stop(self):
        self.calls.append("stop")

    def grow(self, n):
        pass

    def advance(self, n):
        self.bytes += n

    def moved(self, item):
        self.items.append(item)

    def warn(self, text):
        self.calls.append(text)


def test_push_and_pull_return_their_tally(project, fakes, tmp_path, monkeypatch):
    remote = (tmp_path / "remote").as_uri()
    _run()
    seen = _Seen()
    pushed = transfer.push(remote, progress=seen)
    assert pushed.ok and pushed.verb == "pushed" and len(pushed.moved) == 5 and seen.calls == ["pushing", "stop"]
    assert seen.items == pushed.moved and pushed.bytes == sum(m["bytes"] for m in pushed.moved) > 0
    assert set(pushed.as_json()) == {"pushed", "notes", "problems", "bytes", "seconds"}
    assert transfer.push(remote).notes == ["skipped 5 already on the remote"]
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "fresh-store"))
    pulled = transfer.pull(remote, [SPEC])
    assert pulled.ok and sorted(m["entry"] for m in pulled.moved) == sorted(f"scenes/{s}" for s in STAGES)
    assert {s.action for s in plan(SPEC).steps} == {"cached"}
    assert transfer.pull(remote).notes == ["5 already here"]


def test_pull_from_a_place_with_no_remote_is_an_error(project, tmp_path):
    with pytest.raises(EngineError, match="no engine remote at"):
        transfer.pull((tmp_path / "nothing").as_uri())


# -- validate and schema ---------------------------------------------------------------------------

def test_validate_collects_every_problem_of_every_spec(project):
    (project / "specs" / "bad.yaml").write_text((project / SPEC).read_text().replace("learning_rate", "learning_rat"))
    found = specs.validate([SPEC, "specs/bad.yaml"])
    assert found.ok == [(SPEC, "scenes")] and set(found.resolved) == {SPEC}
    assert [p.path for p in found.problems] == ["$.train.learning_rat"]
    with pytest.raises(SpecError) as raised:
        found.raise_problems()
    assert raised.value.exit_code == 2
    specs.validate([SPEC]).raise_problems()  # nothing to raise


def test_schema_is_the_json_schema_or_its_markdown_reference():
    assert json.loads(specs.schema())["$schema"].startswith("https://json-schema.org/")
    assert "learning_rate" in specs.schema(markdown=True)
