"""The library API: what the CLI, a report or an executor calls to plan and run a spec.

    from engine.api import plan, run

    p = plan("specs/quickstart.yaml", overrides=["train.learning_rate=1e-4"])
    for step in p.steps:
        print(step.node.name, step.action, p.why(step))
    outcome = run(p)                      # silent unless given a reporter
    print(outcome.ok, outcome.record_path, outcome.result.ran)

`plan` never imports torch, transformers or datasets; neither does a `run` whose stages are all
cached. The record of a run with overrides goes to the store, never beside the spec.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from engine.core.digests import DigestCache
from engine.core.graph import Graph
from engine.core.plan import Step, make_plan
from engine.core.reasons import render_all
from engine.core.record import override_record_path, read_record, record_nodes, record_path, write_record
from engine.core.runner import Event, Executor, RemoteLink, Reporter, RunResult, run_plan
from engine.core.store import Store, default_root
from engine.pipeline import resolve_spec
from engine.spec import Spec, load_spec


@dataclass
class Plan:
    """A resolved spec, its stage graph, and for each stage `run` or `cached` with reasons."""

    spec: Spec
    store: Store
    graph: Graph
    digests: DigestCache
    steps: list[Step]
    record: dict | None  # the record the plan explains itself against
    record_file: Path  # where this run's record goes: beside the spec, or in the store for --set runs
    overrides: list[str] = field(default_factory=list)
    record_base: dict | None = None  # the record at record_file before this run (never another spec's)

    @staticmethod
    def why(step: Step) -> str:
        return render_all(step.reasons)

    def as_json(self) -> list[dict]:
        from engine.core.reasons import render

        return [{"stage": s.node.name, "kind": s.node.kind, "action": s.action, "key": s.key, "reasons": s.reasons,
                 "why": [render(r) for r in s.reasons]} for s in self.steps]


@dataclass
class Outcome:
    result: RunResult
    record_path: Path | None  # None when a stage failed (the record is then left as it was)

    @property
    def ok(self) -> bool:
        return self.result.ok


def spec_label(spec: Spec) -> str:
    """The spec's path relative to its project root (the same in every clone)."""
    from engine.core.project import project_root

    return Path(os.path.relpath(spec.path, project_root(spec.root))).as_posix()


def plan(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, store: str | Path | None = None,
         force: tuple[str, ...] = (), until: str | None = None, rehash: bool = False,
         registry: Mapping | None = None, allow_outside_project: bool | None = None) -> Plan:
    """Load and validate a spec, resolve its graph and plan it against the store (writes nothing
    but the store's digest cache and, on first use, the store folder itself).

    `allow_outside_project` is the operator's opt-in to inputs outside the project (like the
    CLI flag; process-wide until set again); None leaves the current setting."""
    if allow_outside_project is not None:
        from engine.core.project import allow_outside

        allow_outside(allow_outside_project)
    overrides = list(overrides)
    spec = load_spec(Path(spec_path), overrides)
    the_store = Store(Path(store).resolve() if store else default_root(spec.root))
    the_store.prepare()
    graph = resolve_spec(spec, registry)
    digests = DigestCache(the_store.state_db, rehash=rehash)
    if overrides:
        record_file = override_record_path(the_store.root, spec_label(spec), spec.name, overrides)
        base = read_record(spec.path, record_file)
        record = base or read_record(spec.path)  # reasons: against its own earlier record, else the spec's
    else:
        record_file = record_path(spec.path)
        base = record = read_record(spec.path)
    steps = make_plan(graph, the_store, digests, record, tuple(force), until)
    digests.save()
    return Plan(spec, the_store, graph, digests, steps, record, record_file, overrides, base)


class _Silent:
    def event(self, event: Event) -> None:
        pass

    def progress(self, node: str, total, description: str):
        from engine.core.context import NoBar

        return NoBar()


def run(p: Plan, reporter: Reporter | None = None, *, trust_remote_code: bool = False,
        allow_pickle: bool = False, link: RemoteLink | None = None, executor: Executor | None = None) -> Outcome:
    """Build the plan's `run` steps and write the record when every stage succeeded.

    `link` (engine.core.remote_run.RunLink.open(settings)): pull what the remote has instead of
    building it, and push what was built when the link allows pushing. `executor`
    (engine.executors.ray.RayExecutor): build every ready stage at once through it."""
    result = run_plan(p.graph, p.steps, p.store, p.digests, reporter or _Silent(),
                      {"trust_remote_code": trust_remote_code, "allow_pickle": allow_pickle}, link, executor)
    if not result.ok:
        return Outcome(result, None)
    extra = {"spec_file": spec_label(p.spec), "overrides": sorted(p.overrides)} if p.overrides else {}
    if p.graph.variants:
        extra["sweep"] = sweep_record(p)
    current: set[str] = set()
    if p.record_base and any(name not in result.entries for name in p.graph.order):  # `--until` left some out
        from engine.core.status import CURRENT, record_status

        statuses = record_status(p.graph, p.store, p.digests, p.record_base)
        current = {name for name, status in statuses.items() if status.state == CURRENT}
    nodes = record_nodes(p.graph, result.entries, p.record_base, current, {s.node.name for s in p.steps if s.force})
    path = write_record(p.spec.path, p.spec.name, p.spec.get("seed"), nodes, p.record_base, p.record_file, extra or None)
    return Outcome(result, path)


def sweep_record(p: Plan) -> dict:
    """What the record keeps of a sweep: the metric that ranks it, and each variant's values and nodes."""
    return {"metric": p.spec.get("sweep.metric"), "mode": p.spec.get("sweep.mode"),
            "variants": [{"name": v.label, "set": dict(v.values), "nodes": dict(v.nodes)} for v in p.graph.variants]}
