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


def write_record(spec_path: Path, spec_name: str, seed: int, entries: dict) -> Path:
    """Write the record atomically; entries maps node name -> store Entry."""
    old = read_record(spec_path)
    if (old and old.get("spec") == spec_name and old.get("seed") == seed and old.get("engine") == __version__
            and {n: v.get("key") for n, v in old.get("nodes", {}).items()} == {n: e.key for n, e in entries.items()}):
        return record_path(spec_path)  # everything in it derives from these keys: unchanged
    record = {
        "spec": spec_name,
        "engine": __version__,
        "seed": seed,
        "nodes": {name: node_record(entry) for name, entry in entries.items()},
    }
    path = record_path(spec_path)
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
