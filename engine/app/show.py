"""`show`: the record of a spec's last run, weighed against the spec as it is now.

Per recorded stage: its key, metrics and wall time, whether it is still the spec's result (and if
not, why), and the folder a person opens of its output; and each check's metrics before
fine-tuning, after, and on held-out real items (`checks`). The CLI renders it; `as_json()` is
`engine show --json`.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from engine.app.experiment import Experiment, open_experiment
from engine.app.review import Ranking, ranking
from engine.core.status import CURRENT, NodeStatus, library_drift, summary
from engine.errors import EngineError


@dataclass(frozen=True)
class CheckRow:
    """A check's metric for one fine-tuned generate node: on the samples of the model before
    fine-tuning (`generate[baseline]`), after it, and on held-out real items (`metrics.reference`);
    None where there is no such number."""

    node: str
    metric: str
    base: float | None
    tuned: float | None
    real: float | None


def check_rows(record: dict) -> list[CheckRow]:
    """Every check metric of each fine-tuned generate node that has reference metrics, in the
    order the checks report them."""
    nodes = record.get("nodes", {})
    sweep = record.get("sweep")
    pairs = ([(v["nodes"].get("generate"), v["nodes"].get("generate[baseline]")) for v in sweep["variants"]]
             if sweep else [("generate", "generate[baseline]")])
    number = lambda value: value if isinstance(value, (int, float)) and not isinstance(value, bool) else None  # noqa: E731
    rows = []
    for tuned, base in dict.fromkeys(pairs):
        metrics = nodes.get(tuned, {}).get("metrics", {})
        real = metrics.get("reference")
        if not isinstance(real, dict):
            continue
        before = nodes.get(base, {}).get("metrics", {})
        rows += [CheckRow(tuned, metric, number(before.get(metric)), number(value), number(real.get(metric)))
                 for metric, value in metrics.items() if metric != "samples" and number(value) is not None]
    return rows


@dataclass
class Shown:
    experiment: Experiment
    record: dict  # the record, each node with its `output` path (or None), `status` and `reasons`
    state: str  # `current`, or which stages are out of date / not run
    statuses: dict[str, NodeStatus]
    nodes: list[tuple[str, dict]]  # the record's nodes in pipeline order
    not_run: list[str]  # stages of the spec the record does not have
    headlines: dict[str, tuple[str, ...] | None]  # per node, the metrics shown by default (None: all)
    ranking: Ranking | None  # a sweep's ranking
    checks: list[CheckRow] = field(default_factory=list)  # base -> fine-tuned -> real, per check metric

    @property
    def current(self) -> bool:
        return self.state == CURRENT

    def why(self, name: str) -> str:
        """Why stage `name` is out of date, in words."""
        from engine.core.reasons import render_all

        return render_all(list(self.statuses[name].reasons))

    def library_drift(self) -> dict[str, tuple]:
        """{library: (recorded, installed)} over the out-of-date stages."""
        return library_drift(self.statuses)

    def as_json(self) -> dict:
        return {**self.record, "status": self.state, "record_file": str(self.experiment.record_file)}


def loadable_output(entry_path: Path, produces: tuple[str, ...]) -> Path | None:
    """What a person opens of an entry: the first of the stage's PRODUCES that exists (a train
    output's `model/` or `adapter/` loads with `AutoModelFor...from_pretrained`), else `out/`."""
    for part in tuple(produces) + ("",):
        candidate = entry_path / "out" / part if part else entry_path / "out"
        if candidate.exists():
            return candidate
    return None


def show(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = (), store: str | Path | None = None,
         *, experiment: Experiment | None = None) -> Shown:
    """The record of `spec_path` (with these overrides) and where each stage stands; an error
    naming the command to run when there is no record."""
    from engine.review.metrics import stage_headlines
    from engine.spec.compose import display_name

    e = experiment or open_experiment(spec_path, overrides, store)
    record = e.record
    if record is None:
        how = f"engine run {spec_path}" + "".join(f" --set {shlex.quote(o)}" for o in e.overrides)
        raise EngineError(f"no record for {spec_path}{' with these --set values' if e.overrides else ''} "
                          f"(looked for {display_name(e.record_file)}); run `{how}` first")
    statuses = e.statuses()
    for name, node in record["nodes"].items():
        kind = e.graph.registry.get(node.get("kind", ""))
        path = loadable_output(e.store.entry_path(node["key"]), getattr(kind, "PRODUCES", ()))
        node["output"] = str(path) if path else None
        node["status"] = statuses[name].state if name in statuses else "not in spec"
        if name in statuses and statuses[name].reasons:
            node["reasons"] = list(statuses[name].reasons)
    order = {name: i for i, name in enumerate(e.graph.order)}  # pipeline order, not alphabetical
    nodes = sorted(record["nodes"].items(), key=lambda item: order.get(item[0], len(order)))
    ranked = ranking(record, statuses, e.graph) if e.graph.variants or record.get("sweep") else None
    return Shown(e, record, summary(statuses), statuses, nodes, [n for n in e.graph.order if n not in record["nodes"]],
                 {name: stage_headlines(e.spec, node.get("kind", "")) for name, node in nodes}, ranked, check_rows(record))
