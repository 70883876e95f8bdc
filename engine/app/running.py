"""`plan` and `run`: which stages a spec needs built and why, and building them.

    from engine.app.running import plan, run

    p = plan("specs/quickstart.yaml", overrides=["train.learning_rate=1e-4"])
    for step in p.steps:
        print(step.node.name, step.action, p.why(step))
    outcome = run(p)                      # silent unless given a reporter
    print(outcome.ok, outcome.record_path, outcome.result.ran)

`plan` never imports torch, transformers or datasets; neither does a `run` whose stages are all
cached. The record of a run with overrides goes to the store, never beside the spec.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from engine.app.experiment import Experiment, open_experiment, spec_label
from engine.core.digests import DigestCache
from engine.core.graph import Graph
from engine.core.plan import Step, make_plan
from engine.core.reasons import render_all
from engine.core.record import read_record, record_nodes, write_record
from engine.core.runner import Event, Executor, RemoteLink, Reporter, RunResult, run_plan
from engine.core.store import Store
from engine.spec import Spec

__all__ = ["Plan", "Outcome", "Launch", "plan", "prepare_run", "run", "run_lines", "sweep_record", "Event"]


@dataclass
class Plan:
    """An opened experiment and, for each of its stages, `run` or `cached` with reasons."""

    experiment: Experiment
    steps: list[Step]
    record: dict | None  # the record the plan explains itself against

    spec: Spec = field(init=False)
    store: Store = field(init=False)
    graph: Graph = field(init=False)
    digests: DigestCache = field(init=False)
    record_file: Path = field(init=False)  # where this run's record goes: beside the spec, or in the store for --set runs
    overrides: list[str] = field(init=False)
    record_base: dict | None = field(init=False)  # the record at record_file before this run (never another spec's)

    def __post_init__(self) -> None:
        e = self.experiment
        self.spec, self.store, self.graph, self.digests = e.spec, e.store, e.graph, e.digests
        self.record_file, self.overrides, self.record_base = e.record_file, e.overrides, e.record

    @staticmethod
    def why(step: Step) -> str:
        return render_all(step.reasons)

    def as_json(self) -> list[dict]:
        from engine.core.reasons import render

        return [{"stage": s.node.name, "kind": s.node.kind, "action": s.action, "key": s.key, "reasons": s.reasons,
                 "why": [render(r) for r in s.reasons]} for s in self.steps]

    def builds(self) -> bool:
        """Whether any stage is to be built (a fully cached run needs no remote and no Ray)."""
        return any(step.action != "cached" for step in self.steps)

    def library_drift(self) -> dict[str, tuple]:
        """{library: (recorded, installed)} where a stage reruns because a library version moved."""
        from engine.core.reasons import library_drift

        return library_drift(step.reasons for step in self.steps)

    def search_summary(self) -> str | None:
        """A sweep.search's state: `search (tpe): 2 of 4 trials done; chosen now: trial-3`; None for other specs."""
        study = self.experiment.study
        if study is None:
            return None
        from engine.app.study import label

        chosen = [label(n) for n, _ in study.chosen]
        later = study.trials - len(study.done) - len(chosen)
        return (f"search ({study.method}): {len(study.done)} of {study.trials} trials done"
                + (f"; chosen now: {', '.join(chosen)}" if chosen else "")
                + (f"; {later} more will be chosen from the results" if later > 0 else ""))

    def shared_nodes(self) -> list[str]:
        """A sweep's nodes that every variant shares."""
        return [n for n in self.graph.order if all(n in v.nodes.values() for v in self.graph.variants)]

    def spec_record_file(self) -> Path:
        """The record beside the spec (a run with --set leaves it alone)."""
        from engine.core.record import record_path

        return record_path(self.spec.path)

    def remote_shown(self) -> str | None:
        """The remote a run would pull from (its URL as it may be shown: no credentials), or None."""
        from engine.core.remote_run import remote_url
        from engine.core.remote_store import display

        url = remote_url(self.spec.get("runtime.remote"), self.spec.root)
        return display(url) if url else None


@dataclass
class Outcome:
    result: RunResult
    record_path: Path | None  # None when a stage failed (the record is then left as it was)
    search: Any = None  # a sweep.search's round (engine/app/searching.py Progress): what it told the study

    @property
    def ok(self) -> bool:
        return self.result.ok


def plan(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, store: str | Path | None = None,
         force: tuple[str, ...] = (), until: str | None = None, rehash: bool = False,
         registry: Mapping | None = None, allow_outside_project: bool | None = None) -> Plan:
    """Open the experiment and plan it against the store (writes nothing but the store's digest
    cache and, on first use, the store folder itself).

    `allow_outside_project` is the operator's opt-in to inputs outside the project (like the
    CLI flag; process-wide until set again); None leaves the current setting."""
    if allow_outside_project is not None:
        from engine.core.project import allow_outside

        allow_outside(allow_outside_project)
    experiment = open_experiment(spec_path, overrides, store, registry=registry, rehash=rehash)
    experiment.store.prepare()
    record = experiment.record
    if experiment.overrides and record is None:
        record = read_record(experiment.spec.path)  # reasons: against its own earlier record, else the spec's
    steps = make_plan(experiment.graph, experiment.store, experiment.digests, record, tuple(force), until)
    experiment.digests.save()
    return Plan(experiment, steps, record)


@dataclass
class Launch:
    """What a run builds with, besides this process: a link to a remote store, an executor."""

    link: RemoteLink | None = None  # engine.core.remote_run.RunLink
    executor: Executor | None = None  # engine.executors.ray.RayExecutor

    def summary(self) -> str | None:
        """What the link pulled and pushed, in one line (None without a link or a transfer)."""
        return self.link.summary() if self.link is not None else None

    def pulled(self) -> list[str]:
        return list(self.link.pulled) if self.link is not None else []

    def pushed(self) -> list[str]:
        return list(self.link.pushed) if self.link is not None else []


def prepare_run(p: Plan, *, executor: str = "local", address: str | None = None, push: bool = False,
                trust_remote_code: bool = False, allow_pickle: bool = False) -> Launch:
    """Open what `run` needs beyond this process, only when some stage will be built (a fully
    cached run contacts nothing): the remote (runtime.remote or ENGINE_REMOTE; `push` is the
    operator's --push) and, for `executor="ray"`, Ray at `address`."""
    from engine.core.remote_run import RunLink, remote_settings
    from engine.errors import UsageError

    if address and executor != "ray":
        raise UsageError("--address is the Ray cluster of --executor ray; add --executor ray")
    settings = remote_settings(p.spec.get("runtime.remote"), p.spec.root, push)
    if not p.builds():
        return Launch()
    link = RunLink.open(settings)
    runner = None
    if executor == "ray":
        from engine.executors.ray import RayExecutor
        from engine.pipeline import resolve_spec

        trials = p.experiment.study.variants() if p.experiment.study is not None else None
        runner = RayExecutor(resolve_spec, p.spec.path, p.overrides, p.store.root,
                             {"trust_remote_code": trust_remote_code, "allow_pickle": allow_pickle},
                             address, settings, (p.spec.get("runtime") or {}).get("device", "auto"), trials)
    return Launch(link, runner)


class _Silent:
    def event(self, event: Event) -> None:
        pass

    def progress(self, node: str, total, description: str):
        from engine.core.context import NoBar

        return NoBar()


def run(p: Plan, reporter: Reporter | None = None, *, trust_remote_code: bool = False,
        allow_pickle: bool = False, link: RemoteLink | None = None, executor: Executor | None = None,
        launch: Launch | None = None) -> Outcome:
    """Build the plan's `run` steps and write the record when every stage succeeded.

    `link` (engine.core.remote_run.RunLink.open(settings)): pull what the remote has instead of
    building it, and push what was built when the link allows pushing. `executor`
    (engine.executors.ray.RayExecutor): build every ready stage at once through it. `launch`
    (from `prepare_run`) gives both."""
    if launch is not None:
        link, executor = launch.link, launch.executor
    result = run_plan(p.graph, p.steps, p.store, p.digests, reporter or _Silent(),
                      {"trust_remote_code": trust_remote_code, "allow_pickle": allow_pickle}, link, executor)
    search = None
    if p.experiment.study is not None:  # each trial's metric, or its failure, into the study in the store
        from engine.app.searching import tell

        search = tell(p.experiment.study, p.graph, result, p.spec.get("sweep.metric"))
    if not result.ok:
        return Outcome(result, None, search)
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
    return Outcome(result, path, search)


def sweep_record(p: Plan) -> dict:
    """What the record keeps of a sweep: the metric that ranks it, and each variant's values and nodes."""
    out = {"metric": p.spec.get("sweep.metric"), "mode": p.spec.get("sweep.mode"),
           "variants": [{"name": v.label, "set": dict(v.values), "nodes": dict(v.nodes)} for v in p.graph.variants]}
    if p.experiment.study is not None:
        from engine.app.searching import search_record

        out["search"] = search_record(p.experiment.study, out["metric"])
    return out


def run_lines(p: Plan, entries: dict) -> list[str]:
    """The end of a run: headline numbers before -> after fine-tuning, and the first sample as text."""
    import json

    from engine.review.metrics import stage_headlines

    lines = []
    for kind in ("evaluate", "generate"):
        after, before = entries.get(kind), entries.get(f"{kind}[baseline]")
        if after is None:
            continue
        shown = []
        for name in stage_headlines(p.spec, kind):
            if name == "samples":
                continue
            metrics = after.manifest.get("result", {}).get("metrics", {})
            new, real = metrics.get(name), (metrics.get("reference") or {}).get(name)  # real: the checks on held-out items
            old = before.manifest.get("result", {}).get("metrics", {}).get(name) if before else None
            if isinstance(new, (int, float)):
                shown.append((f"{name} {old:.4g} -> {new:.4g}" if isinstance(old, (int, float)) else f"{name} {new:.4g}")
                             + (f" (real {real:.4g})" if isinstance(real, (int, float)) else ""))
        if shown:
            lines.append(f"{kind}: " + "  ".join(shown) + ("  (before -> after fine-tuning)" if before else ""))
    samples = entries.get("generate")
    if samples is not None and (samples.out / "samples.jsonl").is_file():
        with open(samples.out / "samples.jsonl", encoding="utf-8") as handle:
            first = json.loads(handle.readline() or "{}")
        text = (first.get("completion") or "").strip("\n").splitlines()
        if text:
            lines.append("first sample:")
            lines += [f"  {line}" for line in text[:12]] + (["  ..."] if len(text) > 12 else [])
    return lines


def run_json(outcome: Outcome, launch: Launch) -> dict:
    """`engine run --json`: what ran, failed, was skipped, pulled and pushed, and each stage's entry."""
    result = outcome.result
    return {"ok": result.ok, "ran": result.ran, "failed": result.failed, "skipped": list(result.skipped),
            "pulled": launch.pulled(), "pushed": launch.pushed(),
            "stages": {n: {"key": e.key, "path": str(e.out), "metrics": e.manifest.get("result", {}).get("metrics", {})}
                       for n, e in result.entries.items()}}
