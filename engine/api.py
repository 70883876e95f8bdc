"""The library API, kept for code written against it: `engine.app` is where it lives now.

    from engine.api import plan, run

    p = plan("specs/quickstart.yaml", overrides=["train.learning_rate=1e-4"])
    for step in p.steps:
        print(step.node.name, step.action, p.why(step))
    outcome = run(p)                      # silent unless given a reporter
    print(outcome.ok, outcome.record_path, outcome.result.ran)

Every other command is a function of engine.app too (engine/app/__init__.py lists them).
"""
from __future__ import annotations

from engine.app.experiment import Experiment, open_experiment, spec_label
from engine.app.running import Outcome, Plan, plan, run, sweep_record

__all__ = ["Plan", "Outcome", "Experiment", "plan", "run", "open_experiment", "spec_label", "sweep_record"]
