"""The run record: a small deterministic JSON file beside the spec, meant to be committed.

`specs/quickstart.yaml` -> `specs/quickstart.lock.json`. Per node: its key and payload (what it
read: params, input digests, upstream keys, library versions), the headline metrics and facts
the stage reported (model revision, sizes), and the wall time of the run that built the entry.
Sorted and free of timestamps of this run, so a fully cached rerun leaves it byte-identical.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from engine import __version__


def record_path(spec_path: Path) -> Path:
    return spec_path.with_name(spec_path.name.rsplit(".", 1)[0] + ".lock.json")


def read_record(spec_path: Path) -> dict | None:
    path = record_path(spec_path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def node_record(entry) -> dict:
    """What the record keeps of one node's store entry."""
    manifest = entry.manifest
    result = manifest.get("result", {})
    return {
        "key": entry.key,
        "kind": manifest["payload"]["kind"],
        "payload": manifest["payload"],
        "metrics": result.get("metrics", {}),
        "facts": result.get("facts", {}),
        "wall_s": round(manifest.get("wall_s", 0.0), 1),
    }


def record_nodes(graph, entries: dict, old: dict | None) -> dict[str, dict]:
    """The nodes a record keeps after a run: those this run ran or found cached, plus earlier
    records of nodes it did not reach (`--until`) whose upstream keys this run left unchanged.
    A node downstream of a change is dropped rather than kept with stale numbers."""
    nodes = {name: node_record(entry) for name, entry in entries.items()}
    previous = (old or {}).get("nodes", {})
    for name in graph.order:
        if name in nodes or name not in previous:
            continue
        ancestors = graph.ancestors(name)
        if all(previous.get(a, {}).get("key") == nodes[a]["key"] for a in ancestors if a in nodes) and \
                all(a in nodes or a in previous for a in ancestors):
            nodes[name] = previous[name]
    return nodes


def write_record(spec_path: Path, spec_name: str, seed: int, nodes: dict[str, dict], old: dict | None) -> Path:
    """Write the record atomically (nodes as made by `record_nodes`; `old` is the record the run
    started from); untouched if unchanged."""
    path = record_path(spec_path)
    if (old and (old.get("spec"), old.get("seed"), old.get("engine")) == (spec_name, seed, __version__)
            and {n: v.get("key") for n, v in old.get("nodes", {}).items()} == {n: v["key"] for n, v in nodes.items()}):
        return path  # everything in it derives from these keys: unchanged, and no JSON to encode
    record = {"spec": spec_name, "engine": __version__, "seed": seed, "nodes": nodes}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
