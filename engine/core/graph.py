"""Resolve a validated spec into a graph of named stage nodes.

    model ──► data ──► train ──► evaluate   (evaluate also reads data; evaluate and generate
      │  (tokenizer) │    ▲   └──► generate    also read the base model, for LoRA adapters;
      └──────────────┼────┘          ▲         generate reads data and copy-index when it
                     └──► copy-index ┘         has checks)
    (a `tokenizer` node comes first when a from-scratch model trains its own tokenizer)

Names are stable and readable. The resolver never assumes one node per kind: a node's name and
its kind are separate, so sweeps (`train[learning_rate=1e-4]`) and multi-phase training can add
nodes of a kind without changing the rest.
"""
from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from pathlib import Path

from engine.spec import FrozenDict, Spec, freeze
from engine.stages import STAGES


@dataclass(frozen=True)
class Node:
    """One stage instance: what it is, what it reads, what it comes after."""

    name: str
    kind: str  # key into engine.stages.STAGES
    params: FrozenDict  # the resolved spec fields this node reads, nested as in the spec
    deps: tuple[str, ...] = ()  # upstream node names
    # Upstream nodes this node depends on through one named digest of their output rather than
    # their key (data reads the model's tokenizer, not its weights): {"model": "tokenizer"}.
    output_deps: FrozenDict = field(default_factory=FrozenDict)


@dataclass(frozen=True)
class Graph:
    spec: Spec
    nodes: dict[str, Node]
    order: tuple[str, ...]  # topological

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


def _select(spec: Spec, dotted_paths: tuple[str, ...]) -> FrozenDict:
    """The nested sub-tree of the spec holding just these dotted paths (absent ones skipped)."""
    out: dict = {}
    for dotted in dotted_paths:
        if not spec.has(dotted):
            continue
        parts = dotted.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = spec.get(dotted)
    return freeze(out)


def node(spec: Spec, name: str, kind: str, deps: tuple[str, ...] = (), output_deps: dict | None = None) -> Node:
    return Node(name, kind, _select(spec, STAGES[kind].reads(spec)), deps, freeze(output_deps or {}))


def resolve(spec: Spec) -> Graph:
    """The stage graph of a spec (pure: reads nothing but the spec)."""
    nodes = []
    model_deps: tuple[str, ...] = ()
    if spec.has("model.config.tokenizer.train_vocab_size"):
        nodes.append(node(spec, "tokenizer", "tokenizer"))
        model_deps = ("tokenizer",)
    nodes.append(node(spec, "model", "model", model_deps))
    nodes.append(node(spec, "data", "data", ("model",), {"model": "tokenizer"}))
    nodes.append(node(spec, "train", "train", ("model", "data")))
    if spec.has("evaluate"):
        nodes.append(node(spec, "evaluate", "evaluate", ("train", "data", "model")))
        if spec.get("evaluate.baseline"):  # the same evaluation of the model before fine-tuning
            nodes.append(node(spec, "evaluate[baseline]", "evaluate", ("data", "model")))
    if spec.has("generate"):
        checks = spec.get("generate.checks")
        extra: tuple[str, ...] = ("data",) if checks else ()  # checks compare with the training data
        if "copy" in checks:
            nodes.append(node(spec, "copy-index", "copy-index", ("data", "model"), {"model": "tokenizer"}))
            extra += ("copy-index",)
        nodes.append(node(spec, "generate", "generate", ("train", "model") + extra))
        if spec.get("generate.baseline"):
            nodes.append(node(spec, "generate[baseline]", "generate", ("model",) + extra))
    by_name = {n.name: n for n in nodes}
    order = tuple(graphlib.TopologicalSorter({n.name: set(n.deps) for n in nodes}).static_order())
    return Graph(spec, by_name, order)


def spec_relative(spec: Spec, path: Path) -> str:
    """A label for an input file (see engine.core.project.input_label: relative to the project root)."""
    from engine.core.project import input_label

    return input_label(spec, path)
