"""`validate` and `schema`: the spec language, without planning anything."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import Problem, SpecError

__all__ = ["Validated", "validate", "schema"]


@dataclass
class Validated:
    """Which specs are sound (path, name, resolved tree) and every problem of the others."""

    ok: list[tuple[str, str]] = field(default_factory=list)  # (path as given, spec name)
    resolved: dict[str, dict] = field(default_factory=dict)  # path as given -> resolved spec (defaults filled)
    problems: list[Problem] = field(default_factory=list)

    def raise_problems(self) -> None:
        """One SpecError with every problem of every file (exit 2), if any."""
        if self.problems:
            raise SpecError(self.problems)


def validate(spec_paths: list[str], overrides: list[str] | tuple[str, ...] = ()) -> Validated:
    """Validate every spec given, and the data files each names (they exist; their first record has
    the fields the templates use). Collects all problems of all files; raises nothing for them."""
    from engine.spec import load_spec, thaw
    from engine.pipeline import constrain_problems, select_problems, training_check_problems
    from engine.spec.data_files import data_problems

    out = Validated()
    for path in spec_paths:
        try:
            spec = load_spec(Path(path), list(overrides))
        except SpecError as exc:
            out.problems.extend(exc.problems)
            continue
        found = list(dict.fromkeys(p for s in _distinct_data(spec) for p in data_problems(s)))
        found += select_problems(spec) + training_check_problems(spec)  # a metric the checks do not report
        found += constrain_problems(spec)  # a grammar that does not compile
        if found:
            out.problems.extend(found)
            continue
        out.resolved[path] = thaw(spec.tree)
        out.ok.append((path, spec.name))
    return out


def _distinct_data(spec) -> list:
    """The spec and those of its sweep variants whose data section differs (a sweep may vary data.text)."""
    out = {}
    for one in (spec, *(variant for _, _, variant in spec.variants)):
        out.setdefault(json.dumps(one.tree["data"], sort_keys=True), one)
    return list(out.values())


def schema(markdown: bool = False) -> str:
    """The JSON Schema of the spec language, or a Markdown reference of every field."""
    if markdown:
        from engine.spec.reference import markdown_reference

        return markdown_reference()
    from engine.spec.schema import SCHEMA_PATH

    return SCHEMA_PATH.read_text(encoding="utf-8")
