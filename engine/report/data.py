"""What a report reads of one spec: its record, the status of each node, and the store's files.

The record says what ran (keys, metrics, wall times); `record_status` says whether each node is
still the spec's result; the store holds the files the record does not (the training log, the
samples). A store entry may be gone (`engine cache gc`, another machine): then `out()` is None and
the page says "not in store" instead of failing.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine.core.graph import Graph
from engine.core.status import NOT_RUN, NodeStatus
from engine.core.store import MANIFEST, OUT, Store
from engine.spec import Spec

NOT_IN_SPEC = "not in spec"


@dataclass(frozen=True)
class Variant:
    """One experiment of a spec: a sweep variant, or the spec itself (label "")."""

    label: str
    values: dict  # dotted path -> value ({} without a sweep)
    nodes: dict  # pipeline node name ("train") -> node name in the record ("train[learning_rate=0.001]")


@dataclass
class SpecData:
    spec: Spec
    label: str  # the spec's path relative to its project root
    store: Store
    record: dict | None
    record_file: Path
    graph: Graph
    statuses: dict[str, NodeStatus]
    revision: str | None = None  # `HEAD~1 (abc1234)` for a spec read from git; None for the working tree

    @property
    def nodes(self) -> dict[str, dict]:
        return (self.record or {}).get("nodes", {})

    def order(self) -> list[str]:
        """Every node of the graph and the record: pipeline order, then recorded nodes no longer in the spec."""
        return list(self.graph.order) + sorted(n for n in self.nodes if n not in self.graph.nodes)

    def state(self, name: str) -> str:
        if name in self.statuses:
            return self.statuses[name].state
        return NOT_IN_SPEC if name in self.nodes else NOT_RUN

    def out(self, name: str) -> Path | None:
        """The `out/` folder of the recorded entry of `name`, or None when it is not in the store."""
        node = self.nodes.get(name)
        if node is None:
            return None
        entry = self.store.entry_path(node["key"])
        return entry / OUT if (entry / MANIFEST).is_file() else None

    def variants(self) -> list[Variant]:
        """The record's sweep variants; without a sweep, one variant whose nodes are named as in the pipeline."""
        sweep = (self.record or {}).get("sweep")
        if sweep:
            return [Variant(v["name"], dict(v.get("set", {})), dict(v["nodes"])) for v in sweep["variants"]]
        return [Variant("", {}, {name: name for name in self.order()})]

    def is_sweep(self) -> bool:
        return bool((self.record or {}).get("sweep"))


def from_side(side, store: Store) -> SpecData:
    """What the page shows of one opened spec (engine/review/side.py: a path, or REV:path read
    from git), weighed as `engine diff` and `compare` weigh a side."""
    from engine.core.record import record_path, spec_label

    source = side.source
    label = source.label if source.rev else spec_label(side.spec)
    revision = f"{source.rev} ({_short_commit(source)})" if source.rev else None
    return SpecData(side.spec, label, store, side.record, record_path(source.path), side.graph, side.statuses, revision)


def _short_commit(source) -> str:
    """The commit a revision names, abbreviated as git does: `HEAD~1` is a different commit tomorrow."""
    from engine.review.sources import repo_top

    out = subprocess.run(["git", "rev-parse", "--short", f"{source.rev}^{{commit}}"], cwd=repo_top(source.path.parent),
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


def log_history(out: Path | None) -> list[dict] | None:
    """The trainer's log entries (`loss`, `eval_loss`, `learning_rate` by `step`), or None."""
    value = _json(out / "log_history.json") if out else None
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else None


def samples(out: Path | None, name: str = "samples.jsonl") -> list[dict] | None:
    """The rows of a generate entry's samples.jsonl (or candidates.jsonl: `name`; a line that is not a
    JSON object is skipped), or None."""
    path = out / name if out else None
    if path is None or not path.is_file():
        return None
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
