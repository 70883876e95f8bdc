"""Resolve a validated spec into a graph of named stage nodes, from a declared pipeline.

A pipeline is a tuple of node templates (the fine-tuning one is `engine/pipeline.py`): each
names a node, its stage kind, a condition on the spec, and its inputs bound by *role*:

    NodeTemplate("evaluate[baseline]", "evaluate", when=..., inputs={"model": "model", "data": "data"})

The resolver keeps the templates whose condition holds, binds each role to the node it names
(a binding can have its own condition), and orders the result. It knows no stage kind: the
registry of kinds and the pipeline are arguments, so sweeps and multi-phase training are more
templates of the same kinds, never new wiring. A stage receives its inputs by role
(`ctx.inputs["model"]`), and its key chains upstream keys by role, so a node's name never
enters a key.

Names are stable and readable; a node's name and its kind are separate.
"""
from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from typing import Callable, Mapping

from engine.core.stage import Registry, ignored_fields
from engine.errors import EngineError
from engine.spec import FrozenDict, Spec, freeze
from engine.spec.schema import NOTE_PREFIX

Condition = Callable[[Spec], bool]


def always(spec: Spec) -> bool:
    return True


@dataclass(frozen=True)
class Bind:
    """An input role bound to a node, when `when` holds (a role of a node that is absent is left out)."""

    node: str
    when: Condition = always


@dataclass(frozen=True)
class NodeTemplate:
    name: str
    kind: str
    inputs: Mapping[str, str | Bind] = field(default_factory=dict)  # role -> node name
    # roles read through one named digest of the upstream's output rather than its key
    # (data reads the model's tokenizer, not its weights): {"model": "tokenizer"}
    output_deps: Mapping[str, str] = field(default_factory=dict)
    when: Condition = always


@dataclass(frozen=True)
class Node:
    """One stage instance: what it is, what it reads, which nodes feed which of its roles."""

    name: str
    kind: str  # key into the registry
    params: FrozenDict  # the spec fields in this node's key, nested as in the spec
    inputs: FrozenDict = field(default_factory=FrozenDict)  # role -> upstream node name
    output_deps: FrozenDict = field(default_factory=FrozenDict)  # role -> output digest name
    # everything the stage reads: `params` plus the fields it declares ignored (IGNORES), which
    # its run uses (how often to log) but which do not change its output, so stay out of the key
    given: FrozenDict = field(default_factory=FrozenDict)
    spec: Spec | None = field(default=None, compare=False, repr=False)  # a sweep variant's spec; None: the graph's

    @property
    def deps(self) -> tuple[str, ...]:
        """Upstream node names."""
        return tuple(self.inputs.values())


@dataclass(frozen=True)
class Graph:
    spec: Spec
    nodes: dict[str, Node]
    order: tuple[str, ...]  # topological
    registry: Registry = field(default_factory=dict, repr=False)  # stage kinds by name
    variants: tuple = ()  # a sweep's Variant list (engine/core/sweep_graph.py); empty without a sweep

    def spec_of(self, node: Node) -> Spec:
        """The spec a node was resolved from: its sweep variant's, else the graph's."""
        return node.spec or self.spec

    def digests_read(self, name: str) -> tuple[str, ...]:
        """The output digests later nodes read from `name`'s entry (data reads the model's
        tokenizer): an entry whose manifest lacks one is damaged, not a KeyError."""
        return tuple(sorted({n.output_deps[role] for n in self.nodes.values() for role, dep in n.inputs.items()
                             if dep == name and role in n.output_deps}))

    def descendants(self, name: str) -> set[str]:
        out: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for node in self.nodes.values():
                if current in node.deps and node.name not in out:
                    out.add(node.name)
                    frontier.append(node.name)
        return out

    def ancestors(self, name: str) -> set[str]:
        out: set[str] = set()
        frontier = [name]
        while frontier:
            for dep in self.nodes[frontier.pop()].deps:
                if dep not in out:
                    out.add(dep)
                    frontier.append(dep)
        return out


def _select(spec: Spec, dotted_paths: tuple[str, ...], ignored: Mapping[str, str] = FrozenDict()) -> FrozenDict:
    """The nested sub-tree of the spec holding just these dotted paths (absent and ignored ones skipped)."""
    out: dict = {}
    for dotted in dotted_paths:
        if not spec.has(dotted):
            continue
        parts = dotted.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = spec.get(dotted)
    out = _without_notes(out)
    for dotted in ignored:
        *parents, last = dotted.split(".")
        node = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return freeze(out)


def _without_notes(value):
    """`x-` keys are the user's notes: read by no stage, so in no key."""
    if isinstance(value, dict):
        return {k: _without_notes(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith(NOTE_PREFIX))}
    return value


def resolve(spec: Spec, registry: Registry, pipeline: tuple[NodeTemplate, ...]) -> Graph:
    """The stage graph of a spec (pure: reads nothing but the spec); `engine.pipeline.resolve_spec`
    gives the fine-tuning one."""
    present = {t.name for t in pipeline if t.when(spec)}
    nodes = []
    for template in pipeline:
        if template.name not in present:
            continue
        kind = registry.get(template.kind)
        if kind is None:
            raise EngineError(f"pipeline node {template.name}: no stage kind {template.kind!r} in the registry")
        unknown = sorted(set(template.inputs) - set(kind.ROLES))
        if unknown:
            raise EngineError(f"pipeline node {template.name}: stage kind {template.kind!r} has no input role "
                              f"{', '.join(unknown)} (its roles: {', '.join(kind.ROLES) or 'none'})")
        inputs = {}
        for role, bind in template.inputs.items():
            bind = bind if isinstance(bind, Bind) else Bind(bind)
            if bind.node in present and bind.when(spec):
                inputs[role] = bind.node
        reads = kind.reads(spec)
        params = _select(spec, reads, ignored_fields(kind, spec))
        output_deps = {r: part for r, part in template.output_deps.items() if r in inputs}
        nodes.append(Node(template.name, template.kind, params, freeze(inputs), freeze(output_deps), _select(spec, reads)))
    by_name = {n.name: n for n in nodes}
    placed: set[str] = set()
    for node in nodes:  # the pipeline's own order when it is one (it reads best), else a topological one
        if not set(node.deps) <= placed:
            order = tuple(graphlib.TopologicalSorter({n.name: set(n.deps) for n in nodes}).static_order())
            break
        placed.add(node.name)
    else:
        order = tuple(n.name for n in nodes)
    return Graph(spec, by_name, order, registry)
