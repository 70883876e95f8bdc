"""The caching contract: only what changed reruns, and the plan says why."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fake_stages
from engine.cli import main
from engine.stages import STAGES

TESTS = Path(__file__).resolve().parent

SPEC = """\
# yaml-language-server: $schema=../schemas/spec.schema.json
spec_version: 1
name: core
seed: 1
model:
  path: model
data:
  source: {files: "data/*.txt"}
train:
  learning_rate: 5.0e-5
  epochs: 1
evaluate: {split: test}
generate:
  prompts: ["Once"]
  temperature: 0.8
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project dir with a spec, two data files and a stand-in model dir; fake stage runs."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("first text\n\nsecond text\n")
    (root / "data" / "b.txt").write_text("third text\n")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text("{}")
    (root / "model" / "model.safetensors").write_bytes(b"weights")
    (root / "spec.yaml").write_text(SPEC)
    log = tmp_path / "runs.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.chdir(root)
    for kind in list(STAGES):
        monkeypatch.setitem(STAGES, kind, STAGES[kind])  # restored after the test
    fake_stages.install()
    return root


def ran(project) -> list[str]:
    """Stages run since the last call."""
    log = Path(os.environ["FAKE_LOG"])
    names = log.read_text().split() if log.exists() else []
    log.write_text("")
    return names


def plan(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["plan", "spec.yaml", "--json", *args]) == 0
    return {s["stage"]: s for s in json.loads(capsys.readouterr().out)}


def run(*args) -> int:
    return main(["run", "spec.yaml", *args])


def edit(project, old: str, new: str) -> None:
    path = project / "spec.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_first_run_runs_everything_then_nothing(project):
    assert run() == 0
    assert ran(project) == ["model", "data", "train", "evaluate", "generate"]
    assert run() == 0
    assert ran(project) == []


def test_comment_key_order_and_formatting_rerun_nothing(project):
    run(), ran(project)
    (project / "spec.yaml").write_text("""\
# rewritten by hand, same meaning
generate: {temperature: 0.80, prompts: ['Once']}
evaluate:
  split: "test"
train: {epochs: 1.0, learning_rate: 0.00005, x-why: notes inside a section are not hashed either}
data:
  source:
    files: data/*.txt
  x-source: a note the data stage never reads
model: {path: model}
seed: 1
name: core
description: a description is never hashed
x-note: neither are notes
runtime: {device: cpu}
spec_version: 1
""")
    assert run() == 0
    assert ran(project) == []


def test_generation_setting_reruns_generate_only(project, capsys):
    run(), ran(project)
    edit(project, "temperature: 0.8", "temperature: 0.5")
    steps = plan(capsys)
    assert {n: s["action"] for n, s in steps.items()} == {
        "model": "cached", "data": "cached", "train": "cached", "evaluate": "cached", "generate": "run"}
    assert steps["generate"]["why"] == ["generate.temperature 0.8 -> 0.5"]
    run()
    assert ran(project) == ["generate"]


def test_training_hyperparameter_reruns_train_and_after(project, capsys):
    run(), ran(project)
    edit(project, "learning_rate: 5.0e-5", "learning_rate: 1.0e-4")
    steps = plan(capsys)
    assert steps["train"]["why"] == ["train.learning_rate 5e-05 -> 0.0001"]
    assert steps["train"]["reasons"] == [{"kind": "field", "field": "train.learning_rate", "old": 5e-05, "new": 0.0001}]
    assert steps["evaluate"]["reasons"] == [{"kind": "upstream", "stages": ["train"], "change": "will run"}]
    assert steps["evaluate"]["why"] == ["upstream train will run"]
    run()
    assert ran(project) == ["train", "evaluate", "generate"]


def test_set_override_changes_the_key_like_an_edit(project):
    run(), ran(project)
    assert run("--set", "train.learning_rate=1e-4") == 0
    assert ran(project) == ["train", "evaluate", "generate"]


def test_data_content_change_reruns_data_and_after(project, capsys):
    run(), ran(project)
    (project / "data" / "b.txt").write_text("a different third text\n")
    steps = plan(capsys)
    assert steps["data"]["why"] == ["input data/b.txt changed"]
    run()
    assert ran(project) == ["data", "train", "evaluate", "generate"]


def test_new_data_file_is_an_input(project, capsys):
    run(), ran(project)
    (project / "data" / "c.txt").write_text("more\n")
    assert plan(capsys)["data"]["why"] == ["input data/c.txt added"]


def test_touch_without_change_reruns_nothing(project):
    run(), ran(project)
    later = time.time() + 100
    os.utime(project / "data" / "a.txt", (later, later))
    assert run() == 0
    assert ran(project) == []


def test_same_size_edit_with_mtime_put_back_is_caught(project):
    run(), ran(project)
    path = project / "data" / "b.txt"
    st = path.stat()
    path.write_text("THIRD text\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored; ctime cannot be
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert run() == 0
    assert ran(project) == ["data", "train", "evaluate", "generate"]
    assert run("--rehash") == 0
    assert ran(project) == []


def test_version_bump_reruns_stage_and_descendants(project, monkeypatch, capsys):
    run(), ran(project)
    monkeypatch.setattr(STAGES["train"], "VERSION", STAGES["train"].VERSION + 1)
    assert plan(capsys)["train"]["why"] == [f"stage version {STAGES['train'].VERSION - 1} -> {STAGES['train'].VERSION}"]
    run()
    assert ran(project) == ["train", "evaluate", "generate"]


def test_force_and_until(project, capsys):
    run(), ran(project)
    steps = plan(capsys, "--force", "train")
    assert steps["train"]["why"] == ["--force"] and steps["generate"]["action"] == "run"
    assert run("--force", "evaluate") == 0
    assert ran(project) == ["evaluate"]
    assert not (Path(os.environ["ENGINE_STORE"]) / "corrupt").exists()  # a forced rebuild replaces, it is not damage
    assert main(["plan", "spec.yaml", "--until", "nope"]) == 2


def test_moving_the_project_keeps_every_hit(project, monkeypatch, tmp_path):
    monkeypatch.delenv("ENGINE_STORE")  # the store lives in the project: .engine/
    (project / ".git").mkdir()
    run(), ran(project)
    assert (project / ".engine" / "store").is_dir()
    moved = tmp_path / "moved"
    shutil.move(str(project), moved)
    monkeypatch.chdir(moved)
    assert run() == 0
    assert ran(project) == []


def test_failure_caches_nothing_and_skips_downstream(project, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_FAIL", "train")
    assert run() == 1
    err = capsys.readouterr().err
    assert "train failed on purpose" in err and "skipped evaluate, generate" in err
    monkeypatch.delenv("FAKE_FAIL")
    ran(project)
    assert run() == 0
    assert ran(project) == ["train", "evaluate", "generate"]  # model and data stayed cached


def test_a_failure_skips_its_dependents_only(project, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_FAIL", "evaluate")
    assert run() == 1
    err = capsys.readouterr().err
    assert "evaluate failed on purpose" in err and "skipped" not in err
    assert ran(project) == ["model", "data", "train", "evaluate", "generate"]  # generate does not need evaluate
    monkeypatch.delenv("FAKE_FAIL")
    assert run() == 0
    assert ran(project) == ["evaluate"]


def test_damaged_entry_is_reported_and_rebuilt(project, capsys, tmp_path):
    run(), ran(project)
    store = tmp_path / "store" / "store"
    params = [p for p in store.rglob("params.json") if '"data"' in p.read_text() and '"source"' in p.read_text()]
    assert len(params) == 1
    params[0].write_text(params[0].read_text()[:-5])  # truncated
    steps = plan(capsys)
    assert steps["data"]["action"] == "run"
    assert "cached output is damaged (output file params.json has" in steps["data"]["why"][0]
    assert run() == 0
    assert ran(project) == ["data"]  # rebuilt; same key, so downstream entries stay valid
    assert list((tmp_path / "store" / "corrupt").iterdir())


def test_same_size_edit_of_store_file_is_detected(project, tmp_path):
    run(), ran(project)
    target = next(p for p in (tmp_path / "store" / "store").rglob("params.json") if '"generate"' in p.read_text())
    text = target.read_text()
    target.write_text(text.replace("Once", "Twice"[:4]))  # same length, new content and mtime
    assert run() == 0
    assert ran(project) == ["generate"]


def test_cache_verify_finds_silent_corruption(project, tmp_path, capsys):
    run(), ran(project)
    target = next(p for p in (tmp_path / "store" / "store").rglob("params.json") if '"generate"' in p.read_text())
    st = target.stat()
    target.write_text(target.read_text().replace("Once", "Onc3"))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # invisible to the quick check
    assert main(["cache", "verify"]) == 1
    assert "damaged" in capsys.readouterr().out
    assert run() == 0
    assert ran(project) == ["generate"]


def test_cache_verify_finds_a_truncated_file(project, tmp_path, capsys):
    run(), ran(project)
    target = next(p for p in (tmp_path / "store" / "store").rglob("params.json") if '"generate"' in p.read_text())
    target.write_text(target.read_text()[:-5])  # the quick check sees this one: another size
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert "damaged" in out and "1 damaged" in out
    assert run() == 0
    assert ran(project) == ["generate"]


def test_record_is_deterministic_and_show_reads_it(project, capsys):
    run()
    first = (project / "spec.lock.json").read_text()
    record = json.loads(first)
    assert list(record["nodes"]) == sorted(record["nodes"])
    assert record["nodes"]["train"]["payload"]["params"]["train"]["learning_rate"] == 5e-05
    run()
    assert (project / "spec.lock.json").read_text() == first
    capsys.readouterr()
    assert main(["show", "spec.yaml", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert Path(shown["nodes"]["generate"]["output"], "params.json").is_file()


def test_cache_ls_and_gc(project, capsys, tmp_path):
    run()
    edit(project, "temperature: 0.8", "temperature: 0.5")
    run()  # the old generate entry is no longer in the record
    capsys.readouterr()
    assert main(["cache", "ls", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 6
    assert main(["cache", "gc", "--records", "."]) == 0  # too fresh: a running build may be about to record it
    assert "0 entries" in capsys.readouterr().out
    assert main(["cache", "gc", "--grace", "0", "--records", "."]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert main(["cache", "ls", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5


def test_missing_data_file_is_located_spec_error(project, capsys):
    edit(project, 'files: "data/*.txt"', "files: data/missing.jsonl")
    assert run() == 2
    assert "spec.yaml:8:19  $.data.source.files  data file not found: data/missing.jsonl" in capsys.readouterr().err


# -- processes: kill, concurrency, imports ---------------------------------------------------------

def _engine(project, *args, **env_extra) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(TESTS), **env_extra}
    return subprocess.Popen([sys.executable, str(TESTS / "fake_stages.py"), "run", "spec.yaml", *args],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigkill_mid_stage_leaves_no_entry(project, tmp_path):
    mark = tmp_path / "train-started"
    proc = _engine(project, FAKE_SLOW="train", FAKE_MARK=str(mark))
    _wait_for(mark)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    entries = [json.loads(m.read_text())["node"] for m in (tmp_path / "store" / "store").rglob("manifest.json")]
    assert sorted(entries) == ["data", "model"]
    ran(project)
    assert run() == 0
    assert ran(project) == ["train", "evaluate", "generate"]
    assert not list((tmp_path / "store" / "tmp").iterdir())  # the killed run's staging dir is gone


def test_two_runs_at_once_build_each_stage_once(project, tmp_path):
    mark = tmp_path / "train-started"
    first = _engine(project, FAKE_SLOW="train", FAKE_MARK=str(mark), FAKE_SLEEP="2")
    _wait_for(mark)
    second = _engine(project, FAKE_SLOW="train", FAKE_MARK=str(mark), FAKE_SLEEP="2")
    assert first.wait(60) == 0, first.stderr.read()
    assert second.wait(60) == 0, second.stderr.read()
    names = Path(os.environ["FAKE_LOG"]).read_text().split()
    assert sorted(names) == sorted(["model", "data", "train", "evaluate", "generate"])
    assert main(["cache", "verify"]) == 0


IMPORT_CHECK = """
import sys
from engine.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "transformers", "datasets", "peft", "accelerate") if m in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy) or "none")
"""


@pytest.mark.parametrize("command", ["run", "plan"])
def test_cached_run_and_plan_import_no_heavy_library(project, command):
    assert run() == 0  # fake stages build everything; the real stages compute the same keys
    out = subprocess.run([sys.executable, "-c", IMPORT_CHECK, command, "spec.yaml"], cwd=project,
                         capture_output=True, text=True, env={**os.environ})
    assert "EXIT 0 HEAVY none" in out.stdout, out.stdout + out.stderr


def test_ctrl_c_exits_130_and_leaves_no_entry(project, tmp_path):
    mark = tmp_path / "train-started"
    proc = _engine(project, FAKE_SLOW="train", FAKE_MARK=str(mark))
    _wait_for(mark)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 130
    assert "interrupted" in proc.stderr.read()
    entries = [json.loads(m.read_text())["node"] for m in (tmp_path / "store" / "store").rglob("manifest.json")]
    assert sorted(entries) == ["data", "model"]
    assert not list((tmp_path / "store" / "tmp").iterdir())


def test_until_keeps_the_rest_of_the_record_unless_stale(project):
    run()
    assert run("--until", "data") == 0
    assert set(json.loads((project / "spec.lock.json").read_text())["nodes"]) == {"model", "data", "train", "evaluate", "generate"}
    (project / "data" / "b.txt").write_text("changed\n")
    assert run("--until", "data") == 0
    assert set(json.loads((project / "spec.lock.json").read_text())["nodes"]) == {"model", "data"}
    assert run() == 0
    edit(project, "learning_rate: 5.0e-5", "learning_rate: 1.0e-4")  # train's own field, upstream unchanged
    assert run("--until", "data") == 0
    assert set(json.loads((project / "spec.lock.json").read_text())["nodes"]) == {"model", "data"}  # no stale train


def test_set_records_are_named_by_the_overrides_in_effect(project):
    assert run("--set", "train.epochs=1", "--set", "train.epochs=2") == 0
    assert run("--set", "train.epochs=2", "--set", "train.epochs=1") == 0
    assert len(list((project.parent / "store" / "runs").glob("*.lock.json"))) == 2
    assert run() == 0
    assert run("--set", "train.epochs=3", "--until", "data") == 0  # a new override record takes nothing of the spec's
    records = [json.loads(p.read_text()) for p in (project.parent / "store" / "runs").glob("*.lock.json")]
    assert sorted(len(r["nodes"]) for r in records) == [2, 5, 5]


@pytest.mark.parametrize("field", ["train.log_every=3", "train.save_every=2"])
def test_logging_and_checkpoint_cadence_rerun_nothing(project, capsys, field):
    assert run() == 0
    steps = plan(capsys, "--set", field)
    assert {s["action"] for s in steps.values()} == {"cached"}


def test_changing_the_evaluated_split_reruns_the_evaluation_alone(project, capsys):
    assert run() == 0
    steps = plan(capsys, "--set", "evaluate.split=validation")
    assert [n for n, s in steps.items() if s["action"] == "run"] == ["evaluate"]


def test_levels_judged_by_the_rules_without_java_are_not_the_agents_results(project, monkeypatch):
    from engine.checks import mario_agent

    level_checks = ("--set", "generate.checks=[level]")
    monkeypatch.setattr(mario_agent, "available", lambda: None)  # a machine with Java, whatever this one has
    assert run(*level_checks) == 0
    ran(project)
    with monkeypatch.context() as patched:  # a machine without Java: the rules judge, under another key
        patched.setattr(mario_agent, "available", lambda: "no Java runtime (apt-get install default-jre-headless)")
        assert run(*level_checks) == 0
        assert ran(project) == ["generate"]
        patched.setattr(mario_agent, "available", lambda: "no Java runtime (reworded)")
        assert run(*level_checks) == 0  # why is the record's to say: the key holds that the rules judge
        assert ran(project) == []
    assert run(*level_checks) == 0  # back with the agent: its own results are still in the store
    assert ran(project) == []
