"""The spec language: load a file strictly, merge its bases and overrides, validate, fill defaults.

    spec.yaml --load--> Document (data + places) --extends/--set--> Document
              --validate--> problems (all at once) | Spec (frozen, defaults filled)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import SpecError
from engine.spec.compose import apply_overrides, display_name, load_with_bases
from engine.spec.loader import Place
from engine.spec.schema import fill_defaults
from engine.spec.valid_cache import known_valid, remember_valid


class FrozenDict(dict):
    """A dict that refuses changes: the resolved spec is read, never written."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("the resolved spec is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


def freeze(value: Any) -> Any:
    """Deep-freeze plain data: dicts -> FrozenDict, lists -> tuples, `2.0` -> `2`.

    Numbers are compared as values, so an integral float becomes an int: `epochs: 2.0` and
    `epochs: 2` resolve (and hash) the same.
    """
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def thaw(value: Any) -> Any:
    """Plain mutable copy of frozen data."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def dotted_get(tree: Any, dotted: str, default: Any = None) -> Any:
    """`tree["train"]["learning_rate"]` for "train.learning_rate"; `default` when any part is absent."""
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


@dataclass(frozen=True)
class Spec:
    """A validated spec with every default written in. This, and only this, is what stages read."""

    path: Path  # the spec file, absolute
    tree: FrozenDict  # resolved values; no `extends`, no comments, no formatting
    places: dict = field(default_factory=dict, compare=False, repr=False)
    # A sweep's variants: (label, {dotted path: value}, the variant's own Spec), in sweep order
    variants: tuple = field(default=(), compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.tree["name"]

    @property
    def root(self) -> Path:
        """Directory that relative paths in the spec (data files, model dirs) are resolved from."""
        return self.path.parent

    def get(self, dotted: str, default: Any = None) -> Any:
        """`spec.get("train.learning_rate")`; `default` when any part is absent."""
        return dotted_get(self.tree, dotted, default)

    def has(self, dotted: str) -> bool:
        marker = object()
        return self.get(dotted, marker) is not marker

    def place(self, dotted: str) -> Place | None:
        """Where a value came from (file, line, column), for errors raised after validation."""
        return self.places.get(tuple(dotted.split(".")))


def load_spec(path: str | Path, overrides: list[str] | None = None, shown_as: str | None = None, read=None,
              trials: list | None = None) -> Spec:
    """Load, merge, override, validate and complete one spec; raise SpecError with every problem.

    `read(path) -> bytes` replaces reading from disk (to load a spec as of a git revision).
    `trials`: a `sweep.search`'s trials chosen so far, (label, {path: value}) each: its variants.
    """
    path = Path(path)
    shown = shown_as or display_name(path)
    doc = load_with_bases(path, shown_as, read)
    if overrides:
        doc = apply_overrides(doc, overrides)
    _check(doc, shown)
    variants = ()
    if "sweep" in doc.data:
        from engine.spec.sweep import search_probes, variant_document, variant_values

        problems, built = [], []
        probing = "search" in doc.data["sweep"] and trials is None  # no trial chosen: check the space's values
        for values in search_probes(doc, shown) if probing else variant_values(doc, shown, trials):
            try:
                variant = variant_document(doc, values)
                _check(variant, shown)
            except SpecError as exc:
                problems.extend(exc.problems)
                continue
            built.append((values.label, freeze(values.values),
                          Spec(path.resolve(), freeze(fill_defaults(variant.data)), variant.places)))
        if problems:
            unique = list(dict.fromkeys(problems))  # the same bad value in several variants: said once
            raise SpecError(unique, f"{len(unique)} problem{'s' if len(unique) != 1 else ''} in the sweep's variants")
        variants = () if probing else tuple(built)
    return Spec(path.resolve(), freeze(fill_defaults(doc.data)), doc.places, variants)


def _check(doc, shown: str) -> None:
    """Validate a document (skipped when the same resolved document passed before)."""
    if known_valid(doc.data):
        return
    from engine.spec.validate import validate  # jsonschema costs ~40 ms to import

    problems = validate(doc.data, doc.places, shown)
    if problems:
        raise SpecError(problems)
    remember_valid(doc.data)
