"""A spec's `sweep:` block, turned into variants: each one the spec with some values set.

    sweep:
      grid: {train.learning_rate: [1.0e-4, 3.0e-4], model.lora.r: [8, 16]}   -> 4 variants
      variants: [{name: small, set: {train.batch_size: 2}}]                      -> 1 more

Every variant is validated like a spec of its own, and a problem points at the value in the
sweep block that caused it. The resolver (engine/pipeline.py) then merges the variants' graphs:
a stage that reads the same in several variants is one node.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from engine.errors import Problem, SpecError
from engine.spec.loader import Document, Place, json_path


@dataclass(frozen=True)
class VariantValues:
    label: str  # "learning_rate=0.0001,r=8", or a named variant's name
    values: dict  # dotted path -> value
    places: dict  # dotted path -> Place of the value in the sweep block


def variant_values(doc: Document, shown: str, trials: list | None = None) -> list[VariantValues]:
    """The variants a sweep block describes, in order: the grid's product, then the named ones; for
    a `search`, the `trials` chosen so far ((label, {path: value}) each, from the study in the store:
    engine/app/study.py), none when not given."""
    sweep = doc.data["sweep"]
    if "search" in sweep:
        return [VariantValues(label, dict(values), {p: _place(doc, ("sweep", "search", "space", p), shown) for p in values})
                for label, values in trials or ()]
    grid = sweep.get("grid", {})
    out: list[VariantValues] = []
    paths = list(grid)
    short = _short_names(paths)
    for combo in itertools.product(*(enumerate(grid[p]) for p in paths)) if paths else ():
        values = {p: v for p, (_, v) in zip(paths, combo)}
        places = {p: _place(doc, ("sweep", "grid", p, i), shown) for p, (i, _) in zip(paths, combo)}
        label = ",".join(f"{short[p]}={show(v)}" for p, v in values.items())
        out.append(VariantValues(label, values, places))
    for i, named in enumerate(sweep.get("variants", [])):
        places = {p: _place(doc, ("sweep", "variants", i, "set", p), shown) for p in named["set"]}
        out.append(VariantValues(named["name"], dict(named["set"]), places))
    labels = [v.label for v in out]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        place = _place(doc, ("sweep",), shown)
        raise SpecError([Problem(place.file, place.line, place.col, "$.sweep",
                                 f"two variants are the same ({', '.join(duplicates)}); remove one")])
    return out


def search_probes(doc: Document, shown: str) -> list[VariantValues]:
    """A search's values to check before any trial is chosen: each choice, and each range's ends,
    set alone (a bad one is reported at its place in `space`, as a grid's value is)."""
    out = []
    for path, dimension in doc.data["sweep"]["search"].get("space", {}).items():
        values = dimension if isinstance(dimension, list) else [dimension.get(k) for k in ("low", "high") if k in dimension]
        for i, value in enumerate(values):
            where = ("sweep", "search", "space", path) + ((i,) if isinstance(dimension, list) else ("low" if i == 0 else "high",))
            out.append(VariantValues(f"{path}={show(value)}", {path: value}, {path: _place(doc, where, shown)}))
    return out


def variant_document(doc: Document, variant: VariantValues) -> Document:
    """The spec document of one variant: the values set where their paths say, no sweep block."""
    from engine.spec.compose import _assign, _check_path, _copy

    data = {k: _copy(v) for k, v in doc.data.items() if k != "sweep"}
    places = {k: v for k, v in doc.places.items() if k[:1] != ("sweep",)}
    problems = []
    for dotted, value in variant.values.items():
        path = tuple(dotted.split("."))
        place = variant.places[dotted]
        problem = _check_path(path, f"{place.file}:{place.line}:{place.col}")
        if problem is not None:
            problems.append(Problem(place.file, place.line, place.col, f"$.sweep ({dotted})", problem.message))
            continue
        try:
            _assign(data, path, _copy(value))
        except (KeyError, IndexError, TypeError):
            problems.append(Problem(place.file, place.line, place.col, f"$.sweep ({dotted})",
                                    "cannot set this path: its parent is not a mapping"))
            continue
        for key in [k for k in places if k[: len(path)] == path]:
            del places[key]
        places[path] = place
    if problems:
        raise SpecError(problems)
    return Document(doc.file, data, places)


def show(value: Any) -> str:
    """A value as it appears in a node name: `0.0001`, `8`, `true`, `cosine`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g") if value != int(value) or abs(value) >= 1e16 else str(int(value))
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _short_names(paths: list[str]) -> dict[str, str]:
    """`train.learning_rate` -> `learning_rate`, unless two paths end the same."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return {p: (n if last.count(n) == 1 else p) for p, n in zip(paths, last)}


def _place(doc: Document, path: tuple, shown: str) -> Place:
    return doc.places.get(path) or doc.places.get(path[:-1]) or Place(shown, 0, 0)


__all__ = ["VariantValues", "variant_values", "variant_document", "show", "json_path"]
