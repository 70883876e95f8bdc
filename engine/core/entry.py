"""A store entry: its folder, its manifest and the shape a manifest must have.

    <entry>/manifest.json   written last: key, payload, files (size, mtime_ns, sha256), result, timings
    <entry>/out/...         what the stage wrote

engine/core/store.py finds, commits, checks and locks entries; this module is what they are, so a
remote store (engine/core/remote_store.py) can hold a manifest to the same shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def manifest_problem(manifest) -> str | None:
    """What is wrong with a manifest's shape (a missing or mistyped field), or None."""
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
    if not isinstance(manifest.get("result", {}), dict):
        return "its manifest's result is malformed"
    return None
