"""Is a record still the result of its spec? Per node: current, out of date, or not run.

A record is only evidence for the spec as it is now when each node's recorded key equals the key
the spec and its inputs give today. `show`, `diff` and `compare` use this so that they never
present old numbers as the result of a change:

    current      recorded key == today's key (the numbers are what this spec produces)
    out of date  recorded, but the spec, an input or an upstream stage changed since
    not run      no record of this node (the stage was never run for this spec)

A key that depends on an upstream output (data reads the model's tokenizer digest) is computed
from the store entry, or from the record itself when the upstream key is unchanged (the digest
is then the recorded one: same key, same output). Reads the store and the input files' digests;
writes nothing but the digest cache.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.digests import DigestCache
from engine.core.graph import Graph
from engine.core.payload import key_of
from engine.core.plan import compute_payload, explain
from engine.core.store import Store

CURRENT, OUT_OF_DATE, NOT_RUN = "current", "out of date", "not run"


@dataclass(frozen=True)
class NodeStatus:
    state: str  # CURRENT | OUT_OF_DATE | NOT_RUN
    key: str | None  # today's key (None when an upstream output it needs is unknown)
    recorded_key: str | None
    in_store: bool  # today's key has a finished entry in the store
    reasons: tuple = ()  # why an out-of-date node's key moved (engine/core/reasons.py), against its record


def library_drift(statuses: dict[str, NodeStatus]) -> dict[str, tuple]:
    """{library: (recorded, installed)} over the out-of-date nodes (engine.core.reasons.library_drift)."""
    from engine.core.reasons import library_drift as drift

    return drift(s.reasons for s in statuses.values())


def record_status(graph: Graph, store: Store, digests: DigestCache, record: dict | None,
                  inputs: dict[str, dict[str, str]] | None = None) -> dict[str, NodeStatus]:
    """Status of every node of the graph against `record` (see module docstring). `inputs`
    ({node: {label: digest}}) replaces reading the files, for a spec as of a git revision."""
    recorded = (record or {}).get("nodes", {})
    keys: dict[str, str] = {}
    entries: dict = {}
    out: dict[str, NodeStatus] = {}
    for name in graph.order:
        node = graph.nodes[name]
        payload = compute_payload(graph, node, keys, entries, digests, recorded, (inputs or {}).get(name))
        key = key_of(payload) if payload is not None else None
        entry = None
        if key is not None:
            keys[name] = key
            entry, _ = store.check(key, graph.digests_read(name))
            if entry is not None:
                entries[name] = entry
        old = recorded.get(name, {}).get("key")
        state = NOT_RUN if old is None else CURRENT if old == key else OUT_OF_DATE
        reasons = explain(recorded[name], payload, [], dict(node.inputs)) if state == OUT_OF_DATE and payload else []
        out[name] = NodeStatus(state, key, old, entry is not None, tuple(reasons))
    return out


def summary(statuses: dict[str, NodeStatus]) -> str:
    """One line: `current`, or which nodes are out of date / not run."""
    stale = [n for n, s in statuses.items() if s.state == OUT_OF_DATE]
    missing = [n for n, s in statuses.items() if s.state == NOT_RUN]
    if not stale and not missing:
        return CURRENT
    parts = []
    if stale:
        parts.append(f"out of date: {', '.join(stale)}")
    if missing:
        parts.append(f"not run: {', '.join(missing)}")
    return "; ".join(parts)
