"""The fine-tuning pipeline, declared: which nodes a spec gets, and how their inputs are bound.

    tokenizer? ──► model ──► data ──► train ──► evaluate            evaluate[baseline]?
                     │  (tokenizer)│    │   └──► generate             generate[baseline]?
                     └─────────────┴────┴──► copy-index? ──► generate

Each template binds its inputs by role. Evaluate and generate load the model to score from their
`weights` role: `train` for the fine-tuned model, `model` for a baseline node, explicitly; a
sweep variant binds its own train node. (Never "a missing input means baseline".) `copy-index` exists when a `copy`
check is asked for; generate reads the data only when it has checks to compare against.
Sweeps and multi-phase training will add templates of these same kinds.
"""
from __future__ import annotations

from engine.core.graph import Bind, NodeTemplate, resolve
from engine.core.stage import Registry
from engine.spec import Spec


def _trains_tokenizer(spec: Spec) -> bool:
    return spec.has("model.config.tokenizer.train_vocab_size")


def _evaluates(spec: Spec) -> bool:
    return spec.has("evaluate")


def _generates(spec: Spec) -> bool:
    return spec.has("generate")


def _checks(spec: Spec) -> bool:
    return bool(spec.get("generate.checks"))


def _copy_check(spec: Spec) -> bool:
    return "copy" in (spec.get("generate.checks") or ())


PIPELINE: tuple[NodeTemplate, ...] = (
    NodeTemplate("tokenizer", "tokenizer", when=_trains_tokenizer),
    NodeTemplate("model", "model", inputs={"tokenizer": "tokenizer"}),
    NodeTemplate("data", "data", inputs={"model": "model"}, output_deps={"model": "tokenizer"}),
    NodeTemplate("train", "train", inputs={"model": "model", "data": "data"}),
    NodeTemplate("evaluate", "evaluate", when=_evaluates,
                 inputs={"weights": "train", "data": "data", "model": "model"}),
    NodeTemplate("evaluate[baseline]", "evaluate", when=lambda s: _evaluates(s) and bool(s.get("evaluate.baseline")),
                 inputs={"weights": "model", "data": "data", "model": "model"}),
    NodeTemplate("copy-index", "copy-index", when=lambda s: _generates(s) and _copy_check(s),
                 inputs={"data": "data", "model": "model"}, output_deps={"model": "tokenizer"}),
    NodeTemplate("generate", "generate", when=_generates,
                 inputs={"weights": "train", "model": "model", "data": Bind("data", _checks), "copy-index": "copy-index"}),
    NodeTemplate("generate[baseline]", "generate", when=lambda s: _generates(s) and bool(s.get("generate.baseline")),
                 inputs={"weights": "model", "model": "model", "data": Bind("data", _checks), "copy-index": "copy-index"}),
)


def default_registry() -> Registry:
    """The stage kinds of `engine/stages/` (imported here, never by core)."""
    from engine.stages import STAGES

    return STAGES


def resolve_spec(spec: Spec, registry: Registry | None = None):
    """The fine-tuning graph of a spec; for a sweep, its variants' graphs merged into one
    (engine/core/sweep_graph.py: each distinct stage once)."""
    registry = registry or default_registry()
    if not spec.variants:
        return resolve(spec, registry, PIPELINE)
    from engine.core.sweep_graph import merge_variants

    graph = merge_variants(spec, [(label, values, resolve(variant, registry, PIPELINE))
                                  for label, values, variant in spec.variants])
    _check_metric(spec, graph)
    return graph


def _check_metric(spec: Spec, graph) -> None:
    """`sweep.metric` must name a stage of every variant."""
    from engine.errors import Problem, SpecError

    stage = spec.get("sweep.metric").split(".", 1)[0]
    if all(stage in variant.nodes for variant in graph.variants):
        return
    place = spec.place("sweep.metric") or spec.place("sweep")
    stages = sorted(set().union(*(variant.nodes for variant in graph.variants)))
    raise SpecError([Problem(place.file if place else spec.path.name, place.line if place else 0, place.col if place else 0,
                             "$.sweep.metric", f"{spec.get('sweep.metric')}: no stage {stage!r} in this spec's "
                             f"pipeline; the stages are {', '.join(stages)}")])
