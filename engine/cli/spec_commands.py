"""`engine validate` and `engine schema`."""
from __future__ import annotations

import json
import sys

from engine.cli import spec_args


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
    """Validate every spec given, and the data files each names; report all problems of all files,
    exit 2 if any."""
    from engine.app.specs import validate as check

    found = check(args.specs, args.overrides)
    if args.json:
        print(json.dumps(found.resolved, indent=2, sort_keys=True))
    else:
        for path, name in found.ok:
            print(f"ok  {path}  ({name})")
    found.raise_problems()
    return 0


def schema(args) -> int:
    """Print the JSON Schema, or a Markdown reference generated from it."""
    from engine.app.specs import schema as text

    sys.stdout.write(text(args.markdown))
    return 0
