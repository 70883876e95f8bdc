"""The library API: plan and run a spec from Python, as the CLI does."""
from __future__ import annotations

import json

from engine.api import plan, run


def test_plan_then_run_from_python(project, fakes):
    p = plan(project / "specs" / "x.yaml")
    assert [(s.node.name, s.action) for s in p.steps] == [(n, "run") for n in ("model", "data", "train", "evaluate", "generate")]
    assert p.why(p.steps[0]) == "no cached output"
    outcome = run(p)
    assert outcome.ok and outcome.record_path == project / "specs" / "x.lock.json"
    assert outcome.result.ran == ["model", "data", "train", "evaluate", "generate"]
    again = plan(project / "specs" / "x.yaml", ["train.epochs=3"])
    assert {s.node.name: s.action for s in again.steps}["train"] == "run"
    assert again.as_json()[2]["reasons"] == [{"kind": "field", "field": "train.epochs", "old": 1, "new": 3}]
    override = run(again)
    assert override.record_path.parent.name == "runs"  # never beside the spec
    assert json.loads(override.record_path.read_text())["overrides"] == ["train.epochs=3"]
