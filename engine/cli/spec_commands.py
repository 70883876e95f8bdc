"""`engine validate` and `engine schema`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.cli import spec_args
from engine.errors import Problem, SpecError


def register(sub) -> None:
    p = sub.add_parser("validate", help="check specs against the schema, and their data files (present; the first "
                                        "record has the fields the templates name); report every problem")
    spec_args(p, many=True)
    p.add_argument("--json", action="store_true", help="print the resolved specs as JSON")
    p.set_defaults(handler=validate)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec language")
    p.add_argument("--markdown", action="store_true", help="print a Markdown reference of every field instead")
    p.set_defaults(handler=schema)


def validate(args) -> int:
    """Validate every spec given, and the data files each names (they exist; their first record has
    the fields the templates use); report all problems of all files, exit 2 if any."""
    from engine.spec import load_spec, thaw
    from engine.spec.data_files import data_problems

    problems: list[Problem] = []
    resolved = {}
    for path in args.specs:
        try:
            spec = load_spec(Path(path), args.overrides)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        found = list(dict.fromkeys(p for s in _distinct_data(spec) for p in data_problems(s)))
        if found:
            problems.extend(found)
            continue
        resolved[path] = thaw(spec.tree)
        if not args.json:
            print(f"ok  {path}  ({spec.name})")
    if args.json:
        print(json.dumps(resolved, indent=2, sort_keys=True))
    if problems:
        raise SpecError(problems)
    return 0


def _distinct_data(spec) -> list:
    """The spec and those of its sweep variants whose data section differs (a sweep may vary data.text)."""
    out = {}
    for one in (spec, *(variant for _, _, variant in spec.variants)):
        out.setdefault(json.dumps(one.tree["data"], sort_keys=True), one)
    return list(out.values())


def schema(args) -> int:
    """Print the JSON Schema, or a Markdown reference generated from it."""
    from engine.spec.schema import SCHEMA_PATH

    if args.markdown:
        from engine.spec.reference import markdown_reference

        sys.stdout.write(markdown_reference())
    else:
        sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))
    return 0
