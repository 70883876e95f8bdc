"""A store entry: its folder, its manifest and the shape a manifest must have.

    <entry>/manifest.json   written last: key, payload, files (size, mtime_ns, sha256), result, timings
    <entry>/out/...         what the stage wrote

engine/core/store.py finds, commits, checks and locks entries; this module is what they are, so a
remote store (engine/core/remote_store.py) can hold a manifest to the same shape.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.core.payload import key_of

MANIFEST = "manifest.json"
OUT = "out"


@dataclass(frozen=True)
class Entry:
    """A finished store entry."""

    key: str
    path: Path
    manifest: dict

    @property
    def out(self) -> Path:
        return self.path / OUT


@dataclass(frozen=True)
class Verified:
    """What `Store.verify_or_quarantine` found: the sound entry (None when damaged or gone), the
    problems of a damaged one, and where it was moved."""

    entry: Entry | None
    problems: list[str]
    moved_to: Path | None


def manifest_problem(manifest, parts: tuple[str, ...] = ()) -> str | None:
    """What is wrong with a manifest's shape (a missing or mistyped field), or None. Every field
    that code reads with `manifest[...]` is checked here, so a damaged one is a miss, not a KeyError;
    `parts` are the output digests later stages read from it (data reads the model's tokenizer)."""
    if not isinstance(manifest, dict):
        return "its manifest is not a JSON object"
    if not isinstance(manifest.get("key"), str) or not isinstance(manifest.get("payload"), dict):
        return "its manifest lacks its key or payload"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "its manifest has no file list"
    for rel, info in files.items():
        if not (isinstance(info, dict) and isinstance(info.get("size"), int) and isinstance(info.get("mtime_ns"), int)
                and isinstance(info.get("sha256"), str)) or rel.startswith("/") or ".." in rel.split("/"):
            return f"its manifest entry for {rel!r} is malformed"
    result = manifest.get("result")
    if not isinstance(result, dict):  # the stage's metrics and output digests: planning reads them
        return "its manifest has no result" if result is None else "its manifest's result is malformed"
    digests = result.get("digests", {})
    if not (isinstance(digests, dict) and all(isinstance(d, str) for d in digests.values())):
        return "its manifest's output digests are malformed"
    missing = [part for part in parts if part not in digests]
    return f"its manifest lacks the output digest {missing[0]!r}" if missing else None


def read_manifest(folder: Path, parts: tuple[str, ...] = ()) -> tuple[dict | None, str | None]:
    """(manifest, None) for an entry folder whose manifest is sound, names this folder's key and
    holds a payload that hashes to it; (None, problem) for one that is missing, unreadable (cut
    short, not JSON), malformed (`manifest_problem`), names another key or holds another key's
    payload. Only the manifest is read: hashing its payload costs microseconds, so every lookup
    does it (an entry copied or planted under another key is never a hit)."""
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "its manifest is missing"
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8
        return None, f"its manifest is unreadable ({exc.__class__.__name__})"
    try:
        manifest = json.loads(text)
    except ValueError:
        return None, "its manifest is not valid JSON (cut short?)"
    problem = manifest_problem(manifest, parts)
    if problem is None and manifest["key"] != folder.name:
        problem = "its manifest names another key"
    if problem is None and key_of(manifest["payload"]) != folder.name:
        problem = "its manifest's payload does not hash to its key"
    return (None, problem) if problem else (manifest, None)
