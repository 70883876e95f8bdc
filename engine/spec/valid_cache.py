"""Remember documents that passed validation, so a rerun of an unchanged spec skips jsonschema.

Validation is a pure function of the document, the schema and the checks in validate.py, so
the cache key is the sha256 of the three (plus the engine version). Entries are empty files under $ENGINE_CACHE_DIR (default
~/.cache/engine/valid); a lost or unwritable cache only costs a validation.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from engine import __version__
from engine.spec.schema import SCHEMA_PATH


def _folder() -> Path:
    base = os.environ.get("ENGINE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "engine")
    return Path(base) / "valid"


@lru_cache(maxsize=1)
def _schema_digest() -> str:
    """The schema, the checks beyond it (validate.py) and the engine version: a new check in
    validate.py must not be skipped for a spec that passed the old ones."""
    checks = Path(__file__).with_name("validate.py").read_bytes()
    return hashlib.sha256(SCHEMA_PATH.read_bytes() + checks + __version__.encode()).hexdigest()


def _key(data: dict) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((_schema_digest() + text).encode("utf-8")).hexdigest()


def known_valid(data: dict) -> bool:
    return (_folder() / _key(data)).exists()


def remember_valid(data: dict) -> None:
    try:
        folder = _folder()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _key(data)).touch()
    except OSError:
        pass
