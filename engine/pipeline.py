"""The fine-tuning pipeline, declared: which nodes a spec gets, and how their inputs are bound.

    tokenizer? ──► model ──► data ──► train ──► evaluate            evaluate[baseline]?
                     │  (tokenizer)│    │   └──► generate             generate[baseline]?
                     └─────────────┴────┴──► copy-index? ──► generate

Each template binds its inputs by role. Evaluate and generate load the model to score from their
`weights` role: `train` for the fine-tuned model, `model` for a baseline node, explicitly; a
sweep variant binds its own train node. (Never "a missing input means baseline".) `copy-index` exists when a `copy`
check is asked for, or a `pairs` section; generate reads the data only when it has checks to compare against.
With `pairs`, a pairs node (model, data, copy-index ──► pairs) makes dpo's preference pairs and train
reads them through its `pairs` role. Sweeps and multi-phase training will add templates of these same kinds.
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


def _pairs(spec: Spec) -> bool:
    return spec.has("pairs")


PIPELINE: tuple[NodeTemplate, ...] = (
    NodeTemplate("tokenizer", "tokenizer", when=_trains_tokenizer),
    NodeTemplate("model", "model", inputs={"tokenizer": "tokenizer"}),
    NodeTemplate("data", "data", inputs={"model": "model"}, output_deps={"model": "tokenizer"}),
    NodeTemplate("pairs", "pairs", when=_pairs, inputs={"model": "model", "data": "data", "copy-index": "copy-index"}),
    NodeTemplate("train", "train", inputs={"model": "model", "data": "data", "pairs": Bind("pairs", _pairs)}),
    NodeTemplate("evaluate", "evaluate", when=_evaluates,
                 inputs={"weights": "train", "data": "data", "model": "model"}),
    NodeTemplate("evaluate[baseline]", "evaluate", when=lambda s: _evaluates(s) and bool(s.get("evaluate.baseline")),
                 inputs={"weights": "model", "data": "data", "model": "model"}),
    NodeTemplate("copy-index", "copy-index", when=lambda s: (_generates(s) and _copy_check(s)) or _pairs(s),
                 inputs={"data": "data", "model": "model"}, output_deps={"model": "tokenizer"}),
    NodeTemplate("generate", "generate", when=_generates,
                 inputs={"weights": "train", "model": "model", "data": Bind("data", _checks), "copy-index": "copy-index"}),
    NodeTemplate("generate[baseline]", "generate", when=lambda s: _generates(s) and bool(s.get("generate.baseline")),
                 inputs={"weights": "model", "model": "model", "data": Bind("data", _checks), "copy-index": "copy-index"}),
)


def digests_read(kind: str) -> tuple[str, ...]:
    """The output digests later stages read from an entry of this kind (the model's tokenizer),
    for checking an entry whose node is not in any graph at hand (`engine cache verify`)."""
    kinds = {t.name: t.kind for t in PIPELINE}
    return tuple(sorted({part for t in PIPELINE for role, part in t.output_deps.items()
                         if kinds[getattr(t.inputs[role], "node", t.inputs[role])] == kind}))


def default_registry() -> Registry:
    """The stage kinds of `engine/stages/` (imported here, never by core)."""
    from engine.stages import STAGES

    return STAGES


def resolve_spec(spec: Spec, registry: Registry | None = None, read=None):
    """The fine-tuning graph of a spec; for a sweep, its variants' graphs merged into one
    (engine/core/sweep_graph.py: each distinct stage once). `read(path) -> bytes` reads the spec
    `model.from` names as the spec itself was read (at a git revision), not from the disk."""
    registry = registry or default_registry()
    problems = select_problems(spec) + training_check_problems(spec) + constrain_problems(spec)
    if problems:
        from engine.errors import SpecError

        raise SpecError(problems)
    if not spec.variants:
        return _resolve_one(spec, registry, (), read)
    from engine.core.sweep_graph import merge_variants

    graph = merge_variants(spec, [(label, values, _resolve_one(variant, registry, (), read))
                                  for label, values, variant in spec.variants])
    _check_metric(spec, graph)
    return graph


def _resolve_one(spec: Spec, registry: Registry, chain: tuple, read=None):
    """One spec's graph, with the graph of the spec its `model.from` names in front of it:

        pretrain:model ──► pretrain:data ──► pretrain:train ──(source)──► model ──► data ──► train ...

    Only the named stage and what it needs join. The referenced stages keep their own spec (its folder, seed, fields), so they have the keys
    that spec alone gives them: editing it reruns its stages and what follows here, nothing else.
    """
    from engine.core.graph import Graph, Node
    from engine.spec import freeze

    graph = resolve(spec, registry, PIPELINE)
    if not spec.has("model.from"):
        return graph
    ref_spec = _referenced_spec(spec, chain, read)
    ref_graph = _resolve_one(ref_spec, registry, chain + (spec.path,), read)
    prefix = f"{ref_spec.name}:"
    stage = spec.get("model.stage")
    nodes: dict = {}
    needed = ref_graph.ancestors(stage) | {stage}  # its evaluation and samples are that spec's business
    for name in (n for n in ref_graph.order if n in needed):
        node = ref_graph.nodes[name]
        nodes[prefix + name] = Node(prefix + name, node.kind, node.params, freeze({r: prefix + d for r, d in node.inputs.items()}),
                                    node.output_deps, node.given, ref_graph.spec_of(node))
    for name in graph.order:
        node = graph.nodes[name]
        if node.kind == "model":
            source = {"source": prefix + stage}
            base = ref_graph.nodes[stage].inputs.get("model")  # a LoRA train's entry is an adapter over this model
            if base is not None:
                source["source-base"] = prefix + base
            node = Node(node.name, node.kind, node.params, freeze({**node.inputs, **source}),
                        node.output_deps, node.given, node.spec)
        nodes[name] = node
    return Graph(spec, nodes, tuple(nodes), registry)


def _referenced_spec(spec: Spec, chain: tuple, read=None) -> Spec:
    """The spec `model.from` names: inside the project, no sweep, no cycle; errors located."""
    from engine.core.project import check_inside, project_root
    from engine.errors import Problem, SpecError, UsageError
    from engine.spec import load_spec

    place = spec.place("model.from")
    where = (place.file, place.line, place.col) if place else (spec.path.name, 0, 0)
    target = spec.root / spec.get("model.from")

    def problem(message: str) -> SpecError:
        return SpecError([Problem(*where, "$.model.from", message)])

    try:
        check_inside(project_root(spec.root), str(target), spec.get("model.from"))
    except UsageError as exc:
        raise problem(str(exc)) from None
    if not (target.is_file() if read is None else _readable(read, target)):
        raise problem(f"{spec.get('model.from')}: no such spec (looked at {target})")
    if target.resolve() in chain + (spec.path,):
        raise problem(f"{spec.get('model.from')}: specs refer to each other in a cycle; one must start from a model")
    ref = load_spec(target, read=read)
    if ref.variants:
        raise problem(f"{spec.get('model.from')} is a sweep; name one of its variants' specs, or a spec without a sweep")
    stage = spec.get("model.stage")
    if stage == "train" and not ref.has("train"):
        raise problem(f"{spec.get('model.from')} has no train stage")
    return ref


def _readable(read, path) -> bool:
    try:
        read(path)
    except OSError:
        return False
    return True


def select_problems(spec: Spec) -> list:
    """What `generate.select` (of the spec and each sweep variant) cannot do with the spec's checks,
    as located problems (engine/checks/selection.py); `engine validate` reports them too."""
    if not any(one.has("generate.select") for one in (spec, *(v for _, _, v in spec.variants))):
        return []  # the checks are imported only for a spec that selects
    from engine.checks.selection import spec_problems

    return spec_problems(spec)


def constrain_problems(spec: Spec) -> list:
    """A `generate.constrain` grammar, regex or schema that does not compile (or a grammar file that
    is missing), of the spec and each sweep variant, as located problems (engine/constrain/forms.py,
    checked without a tokenizer); `engine validate` reports them too."""
    if not any(one.has("generate.constrain") for one in (spec, *(v for _, _, v in spec.variants))):
        return []  # llguidance is imported only for a spec that constrains
    from engine.constrain.forms import spec_problems

    return spec_problems(spec)


def training_check_problems(spec: Spec) -> list:
    """What the checks that train cannot do (grpo's check rewards, `train.rewards`; the pairs stage's
    `pairs.by`), of the spec and each sweep variant, as located problems; `engine validate` reports
    them too. The checks are imported only for a spec that uses them so."""
    found: dict = {}
    for one in (spec, *(v for _, _, v in spec.variants)):
        if one.get("train.objective") == "grpo" and any("check" in part for part in one.get("train.rewards")):
            from engine.training.rewards import spec_problems

            found.update(dict.fromkeys(spec_problems(one)))
        if one.has("pairs"):
            found.update(dict.fromkeys(_pairs_by_problems(one)))
    return list(found)


def _pairs_by_problems(spec: Spec) -> list:
    """`pairs.by` must be a metric of `pairs.checks` (where they declare theirs)."""
    from engine.checks.scoring import known_metrics
    from engine.errors import Problem

    checks, by = list(spec.get("pairs.checks")), spec.get("pairs.by")
    names = known_metrics(checks)
    if names is None or by in names:
        return []
    place = spec.place("pairs.by")
    where = (place.file, place.line, place.col) if place else (spec.path.name, 0, 0)
    return [Problem(*where, "$.pairs.by", f"{by!r} is not a metric of pairs.checks ({', '.join(checks)}); they report: "
                                         f"{', '.join(sorted(names))}")]


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
