"""`engine reproduce`: rebuild stages in a scratch store from the stored upstream entries and
check that their outputs and metrics are what the store and the record say.

    plan (today's keys) ──► each stage asked for, whose entry is in the store:
        its upstream entries (from the store, held against `cache gc`)
          ──build_step──► a scratch store in a temporary folder (removed afterwards)
          ──compare──► files by sha256, metrics against the record (engine/review/reproduction.py)
        differs? ──► once more with deterministic algorithms on one thread ──► the causes it can see

The project's store gains no entry and the record is not touched (the digest cache of input files
is kept, as `engine plan` keeps it). A stage is built exactly as `engine run` builds it
(engine.core.runner.build_step), with its working folder and logs in the scratch store.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from engine.core.runner import Reporter
from engine.errors import UsageError

__all__ = ["Reproduced", "StageCheck", "reproduce"]


@dataclass
class StageCheck:
    """One stage rebuilt: identical, or what differs and the causes seen."""

    stage: str
    key: str
    against: str  # "record" | "stored entry" (where the record is not current for this stage)
    comparison: object | None = None  # engine.review.reproduction.Comparison; None when it could not be rebuilt
    deterministic: object | None = None  # the deterministic rebuild's Comparison, when there was one
    causes: list[dict] = field(default_factory=list)
    error: str | None = None  # why it could not be rebuilt
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return self.error is None and self.comparison is not None and self.comparison.identical

    def as_json(self) -> dict:
        def form(c):
            return None if c is None else {
                "identical": c.identical,
                "files": [{"path": f.path, "change": f.change, "detail": f.detail} for f in c.files],
                "metrics": [{"metric": m.name, "recorded": m.recorded, "rebuilt": m.rebuilt, "delta": m.delta}
                            for m in c.metrics],
                "timing_only": c.timing_only}
        return {"stage": self.stage, "key": self.key, "against": self.against, "identical": self.identical,
                "error": self.error, "seconds": round(self.seconds, 1), "first": form(self.comparison),
                "deterministic": form(self.deterministic), "causes": self.causes}


@dataclass
class Reproduced:
    spec: str
    stages: list[StageCheck]

    @property
    def identical(self) -> bool:
        return all(check.identical for check in self.stages)

    def as_json(self) -> dict:
        return {"spec": self.spec, "identical": self.identical, "stages": [s.as_json() for s in self.stages]}


def reproduce(spec_path: str | Path, stages: list[str] | tuple[str, ...] = (), overrides: list[str] | tuple[str, ...] = (),
              *, store: str | Path | None = None, reporter: Reporter | None = None, registry: Mapping | None = None,
              scratch: str | Path | None = None, trust_remote_code: bool = False,
              allow_pickle: bool = False) -> Reproduced:
    """Rebuild `stages` (default: every stage whose entry for today's key is in the store) and
    compare; see the module docstring. `scratch`: the folder the temporary stores go under
    (default: the system's temporary folder); the last two as for `engine run`."""
    from engine.app.experiment import open_experiment
    from engine.app.running import _Silent
    from engine.core.plan import CACHED, make_plan

    experiment = open_experiment(spec_path, overrides, store, registry=registry)
    steps = {s.node.name: s for s in make_plan(experiment.graph, experiment.store, experiment.digests, experiment.record)}
    experiment.digests.save()
    wanted = list(stages) or [name for name, s in steps.items() if s.action == CACHED]
    for name in wanted:
        if name not in steps:
            raise UsageError(f"--stage {name}: no such stage; stages are {', '.join(steps)}")
        if steps[name].action != CACHED:
            step = steps[name]
            why = f"its stored entry is damaged ({step.damaged})" if step.damaged else \
                f"the store has no entry for its key ({(step.key or 'not known yet')[:12]})"
            raise UsageError(f"--stage {name}: {why}, so there is nothing to reproduce; `engine run {spec_path}` builds it")
    if not wanted:
        raise UsageError(f"the store holds no stage of {spec_path} for its current keys; `engine run {spec_path}` "
                         f"builds them, then reproduce checks them")
    reporter = reporter or _Silent()
    folder = Path(tempfile.mkdtemp(prefix="engine-reproduce-", dir=scratch))
    held = [experiment.store.hold(s.entry.key) for s in steps.values() if s.entry is not None]  # kept from `cache gc`
    try:
        checks = _Checks(experiment, steps, reporter, folder,
                         {"trust_remote_code": trust_remote_code, "allow_pickle": allow_pickle})
        return Reproduced(experiment.label, [checks.stage(name, f"{i} of {len(wanted)}") for i, name in enumerate(wanted, 1)])
    finally:
        for fd in held:
            experiment.store.release(fd)
        shutil.rmtree(folder, ignore_errors=True)


class _Checks:
    """Rebuilds of one stage into scratch stores, compared with its stored entry."""

    def __init__(self, experiment, steps: dict, reporter: Reporter, folder: Path, options: dict):
        self.experiment, self.steps, self.reporter, self.folder = experiment, steps, reporter, folder
        self.options = options
        self._error = ""

    def stage(self, name: str, place: str) -> StageCheck:
        """Rebuild and compare one stage; its scratch stores are removed before the next (weights twice over)."""
        try:
            return self._stage(name, place)
        finally:
            for scratch in list(self.folder.iterdir()):
                shutil.rmtree(scratch, ignore_errors=True)

    def _stage(self, name: str, place: str) -> StageCheck:
        import time

        from engine.core.runner import Event
        from engine.review import reproduction

        step, store = self.steps[name], self.experiment.store
        recorded = (self.experiment.record or {}).get("nodes", {}).get(name)
        current = recorded is not None and recorded.get("key") == step.key
        check = StageCheck(name, step.key, "record" if current else "stored entry")
        metrics = recorded.get("metrics", {}) if current else step.entry.manifest["result"].get("metrics", {})
        missing = [d for d in step.node.deps if self.steps[d].entry is None]
        if missing:
            check.error = f"its upstream {', '.join(missing)} is not in the store; `engine run` builds it"
            return check
        started = time.time()
        self.reporter.event(Event("log", name, f"reproducing stage {place}: rehashing the stored entry, then "
                                               f"rebuilding it in a scratch store"))
        damaged = store.verify(step.entry)
        first = self.rebuild(step, "first")
        if first is None:
            check.error, check.seconds = self._error, time.time() - started
            return check
        check.comparison = reproduction.compare(step.entry, first, metrics, damaged)
        own = step.entry.manifest["result"].get("metrics", {})
        rebuilt_same = reproduction.compare(step.entry, first, own).identical  # this machine remakes the entry itself
        threads = reproduction.threads_now() if _torch_loaded() else 1
        second, second_same, same_twice = None, None, None
        if not rebuilt_same:
            self.reporter.event(Event("log", name, "differs; rebuilding once more with deterministic algorithms on one thread"))
            with reproduction.deterministic_mode():
                second = self.rebuild(step, "deterministic")
            if second is None:
                check.causes.append({"cause": "nondeterministic kernels",
                                     "detail": f"the rebuild with deterministic algorithms failed: {self._error}"})
            else:
                check.deterministic = reproduction.compare(step.entry, second, metrics, damaged)
                second_same = reproduction.compare(step.entry, second, own).identical
                same_twice = reproduction.compare(first, second, first.manifest["result"].get("metrics", {})).identical
        if not check.comparison.identical:
            if damaged:
                check.causes.append({"cause": "damaged entry", "detail": "stored files no longer match the manifest "
                                     "they were committed with: " + "; ".join(damaged)})
            if check.comparison.metrics and reproduction.compare(step.entry, step.entry, metrics).metrics \
                    and rebuilt_same:
                check.causes.append({"cause": "record differs from its entry", "detail": "the rebuild matches the "
                                     "stored entry's own metrics, not the record's: the record keeps the numbers of "
                                     "another build of this key (a rebuild under an unchanged key does not rewrite "
                                     "the committed record), or was edited; reproduce the stages upstream of it"})
            drift = {} if current else _drift(self.experiment.statuses().get(name))
            check.causes += reproduction.causes(step.entry, first, rebuilt_same, second, second_same, same_twice,
                                                threads, drift)
        check.seconds = time.time() - started
        return check

    def rebuild(self, step, attempt: str):
        """Build `step` into a new scratch store from the stored upstream entries; its entry, or
        None (the reason in `_error`) when the stage failed."""
        from engine.core.plan import RUN, Step
        from engine.core.runner import build_step
        from engine.core.store import Store

        scratch = Store(Path(tempfile.mkdtemp(prefix=f"{attempt}-", dir=self.folder)))
        scratch.prepare()
        upstream = {d: self.steps[d].entry for d in step.node.deps}
        again = Step(step.node, RUN, step.key, step.payload, list(step.reasons))
        try:
            entry, _ = build_step(again, self.experiment.graph, scratch, self.experiment.digests, self.reporter,
                                  self.options, upstream)
            return entry
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a stage that fails is reported, as `engine run` does
            from engine.errors import EngineError

            self._error = str(exc) if isinstance(exc, EngineError) else f"{exc.__class__.__name__}: {exc}"
            from engine.core.runner import Event

            self.reporter.event(Event("failed", step.node.name, self._error))
            return None


def _drift(status) -> dict:
    """{library: (recorded, today)} where the record's payload names other versions than today's key."""
    from engine.core.reasons import library_drift

    return library_drift([status.reasons]) if status is not None else {}


def _torch_loaded() -> bool:
    import sys

    return "torch" in sys.modules
