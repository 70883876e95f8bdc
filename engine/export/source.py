"""Which store entry an export reads, and whether the record vouches for it.

An export is refused unless the stage is current: planned today it would be cached (same key,
entry in the store), and the spec's record lists that same key. The reason given is the plan's
own (which spec field, input or upstream changed), so the fix is the one `engine plan` shows.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UsageError

EXPORTABLE = ("train", "model")  # stage kinds whose output holds a model


@dataclass(frozen=True)
class Found:
    stage: str
    kind: str
    key: str
    task: str
    full: Path | None  # out/model: a whole model (save_pretrained folder)
    adapter: Path | None  # out/adapter: LoRA weights for `base`
    base: Path  # the model stage's out/model (tokenizer, and the base an adapter loads onto)
    spec: object  # engine.spec.Spec
    spec_label: str
    spec_name: str
    record: dict
    store: object  # engine.core.store.Store


def locate(p, stage: str, spec_path) -> Found:
    """The entry of `stage` in an opened plan (engine.app.running.Plan) of the spec the person
    named as `spec_path`, refused unless the stage is current."""
    from engine.core.plan import CACHED
    from engine.core.record import spec_label

    overrides = p.overrides
    nodes = p.graph.nodes
    if stage not in nodes or nodes[stage].kind not in EXPORTABLE:
        choices = [name for name in p.graph.order if nodes[name].kind in EXPORTABLE]
        raise UsageError(f"--stage {stage}: {'no such stage' if stage not in nodes else 'it holds no model'}; "
                         f"stages with a model: {', '.join(choices)}")
    run = f"engine run {shlex.quote(str(spec_path))}" + "".join(f" --set {shlex.quote(o)}" for o in overrides)
    step = next(s for s in p.steps if s.node.name == stage)
    if step.action != CACHED:
        raise UsageError(f"{stage} is not current, so its model is not what the spec describes ({p.why(step)}); "
                         f"run `{run}` first, then export")
    recorded = ((p.record or {}).get("nodes", {}).get(stage) or {}).get("key")
    if p.record is None or recorded is None:
        raise UsageError(f"no record of {stage} for {spec_path} (looked for {p.record_file}); run `{run}` first "
                         "(it is cached: this only writes the record)")
    if recorded != step.key:
        raise UsageError(f"the record of {stage} ({recorded[:12]}) is out of date: today's key is {step.key[:12]}; "
                         f"run `{run}` (cached) to bring the record up to date, then export")
    out = p.store.entry_path(step.key) / "out"
    # the model this stage's output belongs to: its `model` input (a multi-phase spec has others upstream)
    model_stage = stage if nodes[stage].kind == "model" else nodes[stage].inputs["model"]
    model_key = next(s.key for s in p.steps if s.node.name == model_stage)
    full, adapter = out / "model", out / "adapter"
    return Found(stage, nodes[stage].kind, step.key, p.spec.get("task"), full if full.is_dir() else None,
                 adapter if adapter.is_dir() else None, p.store.entry_path(model_key) / "out" / "model",
                 p.spec, spec_label(p.spec), p.spec.name, p.record, p.store)
