"""A `sweep.search` run, round by round: `engine run` runs the trials the study can choose now
(engine/app/study.py), tells the study each one's metric (or that it failed), and plans again,
until every trial is done. Each round is a plain run of the merged graph, so a trial's stages are
cached like any variant's and a rerun trains nothing that is done.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.app.study import Study, finish, label, save


@dataclass
class Progress:
    """What a round told the study, and whether `engine run` goes on."""

    told: list[str] = field(default_factory=list)  # `trial-3 evaluate.loss 3.21`, `trial-4 failed (train: ...)`
    done: int = 0  # trials finished, of `trials`
    trials: int = 0
    stopped: str | None = None  # why the search cannot go on (a stage every trial needs failed)
    failed: bool = False  # a trial failed this round: one more, without it, writes the record

    @property
    def more(self) -> bool:
        return self.stopped is None and bool(self.told) and (self.done < self.trials or self.failed)

    def line(self) -> str:
        told = "; ".join(self.told) if self.told else "no trial finished"
        return f"search: {told}; {self.done} of {self.trials} trials done"


def tell(study: Study, graph, result, metric: str) -> Progress:
    """Record each chosen trial's metric (or its failure) from a round's run result, and save the study."""
    stage, key = metric.split(".", 1)
    variants = {v.label: v for v in graph.variants}
    progress = Progress(trials=study.trials, failed=not result.ok)
    shared = [n for n in result.failed if all(n in v.nodes.values() for v in graph.variants)]
    if shared:
        progress.stopped = f"{', '.join(shared)} failed, which every trial needs"
    for number, _ in study.chosen:
        variant = variants.get(label(number))
        if variant is None or progress.stopped:
            continue
        mine = set(variant.nodes.values())
        failed = [n for n in result.failed if n in mine]
        if failed:
            error = str(result.errors.get(failed[0], "")).strip().splitlines()
            finish(study, number, "fail", error=f"{failed[0]}: {error[0][:200] if error else 'failed'}")
            progress.told.append(f"{label(number)} failed ({failed[0]})")
            continue
        entry = result.entries.get(variant.nodes.get(stage, ""))
        if entry is None:
            continue  # not run this time (--until)
        value = entry.manifest.get("result", {}).get("metrics", {}).get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            finish(study, number, "fail", error=f"{variant.nodes[stage]} reports no {key}")
            progress.told.append(f"{label(number)} failed (no {metric})")
            continue
        finish(study, number, "complete", float(value))
        progress.told.append(f"{label(number)} {metric} {value:.4g}")
    for number, first in study.same.items():
        if first in study.done:
            earlier = study.done[first]
            finish(study, number, earlier["state"], earlier["value"], same_as=label(first))
            progress.told.append(f"{label(number)} has the values of {label(first)}")
    if progress.told:
        save(study)
    progress.done = len(study.done)
    return progress


def search_record(study: Study, metric: str) -> dict:
    """What the record keeps of a search: the method, and every finished trial with its values,
    metric and state (`engine compare` ranks the complete ones; `engine report` draws them)."""
    return {"method": study.method, "trials": study.trials, "study": study.key, "metric": metric, "mode": study.mode,
            "done": [{k: t[k] for k in ("name", "params", "state", "value", "error", "same_as") if k in t}
                     for t in study.records()]}
