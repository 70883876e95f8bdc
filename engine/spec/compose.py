"""Building one document from a spec file, its `extends` chain and `--set` overrides.

    base.yaml  <-extends-  child.yaml  <-  --set train.learning_rate=1e-4
        \\________ deep merge ________/        (mappings merge; lists and scalars replace;
                                               null deletes the inherited key)

An override is a merge patch (JSON Merge Patch, RFC 7386; Helm values do the same): `null` removes
the key it would replace, so `model: {builtin: null, hub: org/name, revision: main}` switches a
base's model source. The spec language has no null values, so nothing else is lost; a null in a
spec without a base stays, and validation reports it. A null for a key no spec has, where the
schema has no such key either, also stays, so a misspelt key is still an unknown key.

Places travel with the values, so an error in a base points at the base file's line.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.errors import Problem, SpecError, UsageError
from engine.spec import schema as spec_schema
from engine.spec.loader import Document, Place, json_path, load_file, load_value
from engine.spec.validate import suggest_key


def display_name(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(Path(path).absolute()) if relative.startswith("..") else relative


def load_with_bases(path: Path, shown_as: str | None = None, read=None, _chain: tuple[Path, ...] = ()) -> Document:
    """Load `path` and merge it over the chain of specs it `extends` (all read through `read`
    when given, e.g. from a git revision)."""
    real = path.resolve()
    name = shown_as or display_name(path)
    doc = load_file(path, name, read)
    base_ref = doc.data.pop("extends", None)
    if base_ref is None:
        return doc
    place = doc.places[("extends",)]
    if not isinstance(base_ref, str) or not base_ref:
        raise SpecError([Problem(name, place.line, place.col, "$.extends", "must be a path to a base spec, relative to this file")])
    base_path = real.parent / base_ref
    if read is None:  # a base spec is a file the spec makes the engine read: inside the project only
        from engine.core.project import check_inside, project_root

        try:
            check_inside(project_root((_chain[0] if _chain else real).parent), str(base_path), base_ref)
        except UsageError as exc:
            raise SpecError([Problem(name, place.line, place.col, "$.extends", str(exc))]) from None
    if read is None and not base_path.is_file():
        raise SpecError([Problem(name, place.line, place.col, "$.extends", f"base spec {base_ref!r} not found (looked at {display_name(base_path)})")])
    if base_path.resolve() in _chain + (real,):
        cycle = " -> ".join(display_name(p) for p in _chain + (real, base_path.resolve()))
        raise SpecError([Problem(name, place.line, place.col, "$.extends", f"extends cycle: {cycle}; remove one of these `extends`")])
    base_name = f"{name.split(':', 1)[0]}:{display_name(base_path)}" if read and ":" in name else None
    base = load_with_bases(base_path, base_name, read, _chain + (real,))
    return merge(base, doc)


def merge(base: Document, over: Document) -> Document:
    """Deep-merge `over` onto `base`: mappings merge key by key, anything else replaces."""
    places = dict(base.places)

    def replace_places(path: tuple) -> None:
        for key in [k for k in places if k[: len(path)] == path]:
            del places[key]

    def walk(into: dict, new: dict, path: tuple) -> None:
        for key, value in new.items():
            sub = path + (key,)
            if value is None and _deletes(sub, key in into):
                replace_places(sub)
                into.pop(key, None)
            elif isinstance(value, dict) and isinstance(into.get(key), dict):
                places[sub] = over.places[sub]
                walk(into[key], value, sub)
            else:
                replace_places(sub)
                into[key] = value
                places.update({k: v for k, v in over.places.items() if k[: len(sub)] == sub})

    data = _copy(base.data)
    walk(data, over.data, ())
    places[()] = over.places.get((), Place(over.file, 1, 1))
    return Document(over.file, data, places)


def apply_overrides(doc: Document, overrides: list[str]) -> Document:
    """Apply `--set dotted.path=value` overrides; values are parsed as YAML (`1e-4` is a number)."""
    data = _copy(doc.data)
    places = dict(doc.places)
    problems: list[Problem] = []
    for item in overrides:
        label = f"--set {item}"
        if "=" not in item:
            problems.append(Problem(label, 0, 0, "", "expected --set dotted.path=value, e.g. --set train.learning_rate=1e-4"))
            continue
        dotted, text = item.split("=", 1)
        path = tuple(int(p) if p.isdigit() else p for p in dotted.strip().split("."))
        if not dotted.strip() or any(p == "" for p in path):
            problems.append(Problem(label, 0, 0, "", "empty key in the dotted path"))
            continue
        problem = _check_path(path, label)
        if problem:
            problems.append(problem)
            continue
        try:
            value = load_value(text, label, path)
        except SpecError as exc:
            problems.extend(Problem(label, 0, 0, p.path, p.message) for p in exc.problems)
            continue
        for key in [k for k in places if k[: len(path)] == path]:
            del places[key]
        parent = _find(data, path[:-1])
        if value is None and _deletes(path, isinstance(parent, dict) and path[-1] in parent):
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            continue
        try:
            _assign(data, path, value)
        except (KeyError, IndexError, TypeError):
            problems.append(Problem(label, 0, 0, json_path(path), "cannot set this path: its parent is not a mapping or the list is too short"))
            continue
        places[path] = Place(label, 0, 0)
    if problems:
        raise SpecError(problems)
    return Document(doc.file, data, places)


def _check_path(path: tuple, label: str) -> Problem | None:
    for depth in range(1, len(path) + 1):
        head = path[:depth]
        if isinstance(head[-1], str) and head[-1].startswith(spec_schema.NOTE_PREFIX):
            return None
        if spec_schema.schema_at(head) is None:
            parent = spec_schema.schema_at(head[:-1]) if depth > 1 else spec_schema.schema()
            allowed = spec_schema.properties_at(parent).keys() if parent else []
            hint = suggest_key(str(head[-1]), allowed) if allowed else ""
            return Problem(label, 0, 0, json_path(head), "no such key in the spec" + hint)
    return None


def _deletes(path: tuple, present: bool) -> bool:
    """Whether an override's null at `path` deletes the key there (see the module docstring)."""
    return isinstance(path[-1], str) and (present or spec_schema.schema_at(path) is not None)


def _find(data: Any, path: tuple) -> Any:
    """The value at `path`, or None where a part is absent."""
    for part in path:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _assign(data: dict, path: tuple, value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        if isinstance(node, dict) and part not in node:
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
