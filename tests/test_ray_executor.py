"""`engine run --executor ray`: independent stages as Ray tasks on a local Ray instance, with the
same keys and record as a local run."""
from __future__ import annotations

import json
import os

import pytest

from engine.cli import main
from tiny import spec_text

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

BASELINES = spec_text("  path: tiny-model").replace("evaluate: {split: test}", "evaluate: {split: test, baseline: true}")


def numbers(record: dict) -> dict:
    """Keys and metrics, less the speed measurements (tokens/s depends on the machine's load)."""
    return {name: (node["key"], {k: v for k, v in node["metrics"].items() if not k.endswith("per_s")})
            for name, node in record["nodes"].items()}


def test_a_ray_run_builds_the_same_entries_and_record_as_a_local_run(scenes_project, tmp_path, monkeypatch, capsys):
    (scenes_project / "spec.yaml").write_text(BASELINES)
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "local-store"))
    assert main(["run", "spec.yaml"]) == 0
    local = json.loads((scenes_project / "spec.lock.json").read_text())
    (scenes_project / "spec.lock.json").unlink()

    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "ray-store"))
    capsys.readouterr()
    try:
        assert main(["run", "spec.yaml", "--executor", "ray", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert sorted(out["ran"]) == sorted(local["nodes"])
        remote = json.loads((scenes_project / "spec.lock.json").read_text())
        # same keys; numbers equal up to float summation order (a Ray task runs torch on 1 thread, this process on 2)
        assert {n: k for n, (k, _) in numbers(remote).items()} == {n: k for n, (k, _) in numbers(local).items()}
        for name, (_, metrics) in numbers(local).items():
            assert numbers(remote)[name][1] == pytest.approx(metrics, rel=1e-6), name
        # cached now: nothing is sent to Ray
        assert main(["run", "spec.yaml", "--executor", "ray", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["ran"] == []
    finally:
        ray.shutdown()


def test_a_failing_ray_task_skips_only_what_depends_on_it(scenes_project, tmp_path, monkeypatch, capsys):
    (scenes_project / "spec.yaml").write_text(BASELINES)
    monkeypatch.setenv("ENGINE_FAULT", "before-commit:evaluate:fail")
    try:
        assert main(["run", "spec.yaml", "--executor", "ray", "--json"]) == 1
        out = json.loads(capsys.readouterr().out)
        assert out["failed"] == ["evaluate"] and "generate" in out["ran"] and "evaluate[baseline]" in out["ran"]
    finally:
        ray.shutdown()
    assert not (scenes_project / "spec.lock.json").exists()


def test_a_random_search_trains_its_trials_as_ray_tasks(scenes_project, tmp_path, monkeypatch, capsys):
    search = """
sweep:
  search:
    method: random
    trials: 2
    space:
      train.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
  metric: evaluate.loss
"""
    text = spec_text("  path: tiny-model")
    (scenes_project / "spec.yaml").write_text(text[:text.index("generate:")] + "runtime: {device: cpu}\n" + search)
    try:
        assert main(["run", "spec.yaml", "--executor", "ray", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert {"train[trial-1]", "train[trial-2]"} <= set(out["ran"])
        done = json.loads((scenes_project / "spec.lock.json").read_text())["sweep"]["search"]["done"]
        assert [(t["name"], t["state"]) for t in done] == [("trial-1", "complete"), ("trial-2", "complete")]
    finally:
        ray.shutdown()
