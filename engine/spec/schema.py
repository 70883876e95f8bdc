"""The JSON Schema of the spec language: loading it, walking it, and filling its defaults.

`engine/schemas/spec.schema.json` is the copy the installed package reads; the repository's
`schemas/spec.schema.json` is the one editors point at. A test keeps the two identical.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "spec.schema.json"
NOTE_PREFIX = "x-"  # keys a user may add anywhere for their own notes


@lru_cache(maxsize=1)
def schema() -> dict:
    """The spec schema as a dict (read once per process)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def deref(node: dict) -> dict:
    """Follow a local `$ref` (`#/$defs/name`) to the schema it names."""
    while "$ref" in node:
        target: Any = schema()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **extra}
    return node


def branches(node: dict) -> Iterator[dict]:
    """The schema itself and every alternative under its oneOf/anyOf, dereferenced."""
    node = deref(node)
    yield node
    for key in ("oneOf", "anyOf"):
        for alt in node.get(key, []):
            yield from branches(alt)


def properties_at(node: dict) -> dict[str, dict]:
    """Every property a value may have under this schema, across its alternatives."""
    out: dict[str, dict] = {}
    for alt in branches(node):
        out.update(alt.get("properties", {}))
    return out


def schema_at(path: tuple) -> dict | None:
    """The schema for a key path such as ("train", "learning_rate"), or None if no such key."""
    node = schema()
    for part in path:
        if isinstance(part, int):
            items = [alt["items"] for alt in branches(node) if "items" in alt]
            if not items:
                return None
            node = items[0]
            continue
        props = properties_at(node)
        if part not in props:
            return None
        node = props[part]
    return deref(node)


def fill_defaults(data: dict) -> dict:
    """A copy of `data` with every schema default written in where the key is absent.

    Defaults apply inside objects that are present (or present by default, such as `train`), and
    inside each object of a list (`train.rewards`); a section with no default (`evaluate`,
    `generate`) stays absent and so stays switched off.
    """
    return _fill(schema(), copy.deepcopy(data))


def _fill(node: dict, value: Any) -> Any:
    node = deref(node)
    if isinstance(value, list) and isinstance(node.get("items"), dict):  # a list of objects: each item's defaults
        return [_fill(node["items"], item) for item in value]
    if not isinstance(value, dict):
        return value
    props = node.get("properties", {})
    for key, sub in props.items():
        sub = deref(sub)
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            value[key] = _fill(sub, value[key])
    return value
