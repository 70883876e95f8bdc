"""The run record: a small deterministic JSON file beside the spec, meant to be committed.

`specs/quickstart.yaml` -> `specs/quickstart.lock.json`. The record beside a spec describes that
spec exactly: a run with `--set` overrides produces something else, so its record goes to the
store instead (`.engine/runs/NAME.HASH.lock.json`, one per spec and set of overrides), where
`engine show --set ...` and `engine cache gc` find it, and the spec's record is left alone.

Per node: its key and payload (what it read: params, input digests, upstream keys, library versions), the headline metrics and facts
the stage reported (model revision, sizes), and the wall time of the run that built the entry.
Sorted and free of timestamps of this run, so a fully cached rerun leaves it byte-identical.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from engine import __version__


def record_path(spec_path: Path) -> Path:
    return spec_path.with_name(spec_path.name.rsplit(".", 1)[0] + ".lock.json")


def spec_label(spec) -> str:
    """The spec's path relative to its project root (the same in every clone)."""
    from engine.core.project import project_root

    return Path(os.path.relpath(spec.path, project_root(spec.root))).as_posix()


def record_file(spec, overrides, store_root: Path) -> Path:
    """The one rule for where a spec's record is: beside the spec, or, for a run with `--set`
    overrides, in the store (`override_record_path`)."""
    if overrides:
        return override_record_path(store_root, spec_label(spec), spec.name, list(overrides))
    return record_path(spec.path)


def override_record_path(store_root: Path, spec_label: str, spec_name: str, overrides: list[str]) -> Path:
    """Where the record of a run of `spec_label` with these `--set` overrides lives. Named by the
    overrides in effect (the last `--set` of a path wins), so their order does not matter."""
    from engine.core.canonical import sha256_of

    effective: dict[str, str] = {}
    for override in overrides:
        path, _, value = override.partition("=")
        effective[path.strip()] = value.strip()
    digest = sha256_of({"spec": spec_label, "overrides": sorted(effective.items())})[:12]
    return store_root / "runs" / f"{spec_name}.{digest}.lock.json"


def read_record(spec_path: Path, path: Path | None = None) -> dict | None:
    """The record beside a spec (or at `path`); None if there is none or it is unreadable."""
    path = path or record_path(spec_path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        print(f"warning: ignoring the record {path}: {exc}; the next run rewrites it", file=sys.stderr)
        return None
    problem = record_problem(record)
    if problem:
        print(f"warning: ignoring the record {path}: {problem}; the next run rewrites it", file=sys.stderr)
        return None
    return record


def record_problem(record) -> str | None:
    """What makes parsed JSON not a record of this engine (no node map, a node without a key), or None."""
    nodes = record.get("nodes") if isinstance(record, dict) else None
    if not isinstance(nodes, dict):
        return "it is not a record of this engine (no nodes)"
    if not all(isinstance(n, dict) and isinstance(n.get("key"), str) for n in nodes.values()):
        return "it is not a record of this engine (a node without a key)"
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


def record_nodes(graph, entries: dict, old: dict | None, current: set[str] = frozenset(),
                 forced: set[str] = frozenset()) -> dict[str, dict]:
    """The nodes a record keeps after a run: those this run ran or found cached, plus earlier
    records of nodes it did not reach (`--until`) that are still current (their recorded key is
    today's key: `current`, from engine.core.status). Any other is dropped, never kept stale.

    A node built again under its recorded key (a fresh clone, an emptied store) keeps its recorded
    entry: the same key is the same experiment, and a teammate's rebuild must not rewrite the
    committed record with its own wall times. `--force` (`forced`) records the rebuild instead."""
    previous = (old or {}).get("nodes", {})
    nodes = {name: previous[name] if name not in forced and previous.get(name, {}).get("key") == entry.key
             else node_record(entry) for name, entry in entries.items()}
    for name in graph.order:
        if name not in nodes and name in previous and name in current:
            nodes[name] = previous[name]
    return nodes


def write_record(spec_path: Path, spec_name: str, seed: int, nodes: dict[str, dict], old: dict | None,
                 path: Path | None = None, extra: dict | None = None) -> Path:
    """Write the record atomically (nodes as made by `record_nodes`; `old` is the record the run
    started from); untouched if unchanged. `path` and `extra` for an override run's record."""
    path = path or record_path(spec_path)
    if not extra and (old and (old.get("spec"), old.get("seed"), old.get("engine")) == (spec_name, seed, __version__)
            and old.get("nodes") == nodes):
        return path  # unchanged (a forced rebuild under the same key may change wall times): no JSON to encode
    record = {"spec": spec_name, "engine": __version__, "seed": seed, "nodes": nodes, **(extra or {})}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path
