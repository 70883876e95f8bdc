"""One graph for a whole sweep: the variants' graphs merged, each distinct stage once.

Two variants' nodes are one node when they are the same stage kind, read the same fields
(defaults written in, IGNORES left out) from specs in the same folder, and are fed by the same
nodes in the same roles; that is exactly when their keys would be equal. Nothing is read to
decide it: merging is as pure as resolving. So sweeping `train.learning_rate` keeps one `model`
and one `data` node and makes a `train`, `evaluate` and `generate` per variant:

    model ──► data ──┬──► train[learning_rate=0.0001] ──► evaluate[learning_rate=0.0001]
                     └──► train[learning_rate=0.0003] ──► evaluate[learning_rate=0.0003]

A node that all variants share keeps its pipeline name; one that belongs to a single variant is
named by it (`train[learning_rate=0.0001,r=8]`, `train[small-lr]`); one shared by some variants
is named by the swept values they have in common (`data[max_length=64]`).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.canonical import canonical_json
from engine.core.graph import Graph, Node
from engine.errors import Problem, SpecError
from engine.spec import FrozenDict, Spec, dotted_get, freeze


@dataclass(frozen=True)
class Variant:
    label: str  # "learning_rate=0.0001" or a named variant's name
    values: FrozenDict  # dotted path -> value
    nodes: FrozenDict  # pipeline node name ("train") -> this variant's node in the merged graph


def merge_variants(spec: Spec, graphs: list[tuple[str, FrozenDict, Graph]]) -> Graph:
    """The merged graph of a sweep (see module docstring); `graphs` is (label, values, graph) per variant."""
    _check_swept_paths_are_read(spec, graphs)
    identity_of: dict[tuple[int, str], str] = {}  # (variant index, node name) -> identity
    first: dict[str, tuple[int, Node]] = {}  # identity -> the first variant's node
    users: dict[str, list[int]] = {}  # identity -> variant indexes
    for index, (_, _, graph) in enumerate(graphs):
        for name in graph.order:
            node = graph.nodes[name]
            inputs = sorted((role, identity_of[(index, dep)]) for role, dep in node.inputs.items())
            # the folder its relative paths are read from: a referenced spec elsewhere reads other files
            folder = str(graph.spec_of(node).root)
            identity = canonical_json([node.kind, node.params, inputs, node.output_deps, folder])
            identity_of[(index, name)] = identity
            first.setdefault(identity, (index, node))
            users.setdefault(identity, []).append(index)
    names = _names(graphs, first, users)
    clashes = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if clashes:
        raise SpecError([Problem(*_sweep_place(spec, "variants"), "$.sweep",
                                 f"two different stages would both be named {', '.join(clashes)}; rename the variant "
                                 f"whose name makes that node name")])
    same = _identical_variants(graphs, identity_of)
    if same:
        raise SpecError([Problem(*_sweep_place(spec, "sweep"), "$.sweep",
                                 f"variants {' and '.join(same)} are the same experiment (every stage reads the same); "
                                 f"remove one, or sweep a field that changes a stage's output")])
    nodes: dict[str, Node] = {}
    for identity, (index, node) in first.items():
        graph = graphs[index][2]
        inputs = {role: names[identity_of[(index, dep)]] for role, dep in node.inputs.items()}
        nodes[names[identity]] = Node(names[identity], node.kind, node.params, freeze(inputs), node.output_deps,
                                      node.given, graph.spec_of(node))
    variants = tuple(Variant(label, values, freeze({name: names[identity_of[(i, name)]] for name in graph.order}))
                     for i, (label, values, graph) in enumerate(graphs))
    registry = graphs[0][2].registry
    return Graph(spec, nodes, tuple(nodes), registry, variants)


def _names(graphs, first: dict, users: dict) -> dict[str, str]:
    """identity -> node name (see module docstring)."""
    by_base: dict[str, list[str]] = {}
    for identity, (_, node) in first.items():
        by_base.setdefault(node.name, []).append(identity)
    names: dict[str, str] = {}
    for base, identities in by_base.items():
        if len(identities) == 1 and len(users[identities[0]]) == len(graphs):
            names[identities[0]] = base
            continue
        labels = {identity: _label(graphs, users[identity], identities, users) for identity in identities}
        for identity in identities:
            label = labels[identity]
            if list(labels.values()).count(label) > 1 or not label:
                label = "+".join(graphs[i][0] for i in users[identity])
            names[identity] = f"{base[:-1]},{label}]" if base.endswith("]") else f"{base}[{label}]"
    return names


def _label(graphs, mine: list[int], identities: list[str], users: dict) -> str:
    """A single variant's label; for a node shared by several, the swept values they have in
    common that tell it from the other nodes of its pipeline name."""
    if len(mine) == 1:
        return graphs[mine[0]][0]

    def common(indexes: list[int]) -> dict:
        values = [dict(graphs[i][1]) for i in indexes]
        return {p: v for p, v in values[0].items() if all(p in other and other[p] == v for other in values[1:])}

    own = common(mine)
    others = [common(users[identity]) for identity in identities if users[identity] != mine]
    telling = {p: v for p, v in own.items() if any(other.get(p) != v for other in others)}
    from engine.spec.sweep import _short_names, show

    short = _short_names(list(telling))
    return ",".join(f"{short[p]}={show(v)}" for p, v in telling.items())


def _identical_variants(graphs, identity_of: dict) -> list[str]:
    """Labels of two variants whose every stage is the same node (the first such pair), else []."""
    seen: dict[tuple, str] = {}
    for index, (label, _, graph) in enumerate(graphs):
        signature = tuple(sorted(identity_of[(index, name)] for name in graph.order))
        if signature in seen:
            return [seen[signature], label]
        seen[signature] = label
    return []


def _check_swept_paths_are_read(spec: Spec, graphs) -> None:
    """A swept path that no stage keys on would make identical variants: an error, located.
    (A field a stage reads but declares without effect, like train.log_every, counts as not read.)"""
    read_somewhere = set()
    for _, values, graph in graphs:
        for dotted in values:
            if any(dotted_get(node.params, dotted, _ABSENT) is not _ABSENT for node in graph.nodes.values()):
                read_somewhere.add(dotted)
    problems = []
    for _, values, _ in graphs:
        for dotted in values:
            if dotted in read_somewhere:
                continue
            read_somewhere.add(dotted)  # say it once
            place = _sweep_place(spec, dotted)
            problems.append(Problem(place[0], place[1], place[2], f"$.sweep ({dotted})",
                                    "no stage's output depends on this path, so every variant would be the same "
                                    "experiment; sweep a field a stage keys on (runtime, description, x- notes and "
                                    "fields a stage declares without effect, like train.log_every, never are)"))
    if problems:
        raise SpecError(problems)


_ABSENT = object()


def _sweep_place(spec: Spec, dotted: str) -> tuple[str, int, int]:
    for key, place in spec.places.items():
        if key[:1] == ("sweep",) and dotted in key:
            return place.file, place.line, place.col
    place = spec.places.get(("sweep",))
    return (place.file, place.line, place.col) if place else (spec.path.name, 0, 0)
