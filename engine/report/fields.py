"""The fields of a resolved spec that differ from the schema's defaults: what makes it this experiment.

The defaults are filled into a skeleton of the spec (its mappings, no values) with the same
`fill_defaults` that resolved it, so a section the spec switches on (`evaluate: {}`) gets its
defaults compared too. `name`, `description` and `spec_version` are in the report's header, the
sweep block has a table of its own, and `x-` notes are not part of the experiment.
"""
from __future__ import annotations

import json
from typing import Any

from engine.spec import freeze, thaw
from engine.spec.schema import fill_defaults
from engine.spec.sweep import show

LEFT_OUT = {"spec_version", "name", "description", "sweep"}


def changed_fields(tree: dict, swept: set[str] = frozenset()) -> list[tuple[str, str]]:
    """[(dotted path, value as text)] of every leaf of `tree` that is not its default; paths a
    sweep sets (`swept`) are left out (each variant has its own value)."""
    top = {k: v for k, v in tree.items() if k not in LEFT_OUT}
    defaults = freeze(fill_defaults(_skeleton(thaw(top))))
    out: list[tuple[str, str]] = []
    for path, value in _leaves(top, ()):
        dotted = ".".join(path)
        if dotted not in swept and _lookup(defaults, path) != value:
            out.append((dotted, field_text(value)))
    return out


def field_text(value: Any) -> str:
    """Strings with newlines or tabs quoted (`"# {title}\\n\\n{text}"`); lists and mappings as JSON with
    their text as it is (`["场景"]`, not `\\u573a` escapes); the rest as a node name shows it."""
    value = thaw(value)
    if isinstance(value, str) and not value.isprintable():
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return show(value)


def _skeleton(tree: Any) -> Any:
    return {k: _skeleton(v) for k, v in tree.items() if isinstance(v, dict)} if isinstance(tree, dict) else None


def _leaves(tree: dict, prefix: tuple):
    for key, value in tree.items():
        if str(key).startswith("x-"):
            continue
        if isinstance(value, dict) and value:
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


_MISSING = object()


def _lookup(tree: Any, path: tuple) -> Any:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree
