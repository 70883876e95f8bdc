"""`generate.constrain` as a spec writes it, read into one `Constraint`.

    constrain: abc | abc-metred | svg | level | play          a built-in grammar (engine/constrain/grammars.py)
    constrain: {grammar: grammars/tune.lark}     a Lark or GBNF file, relative to the spec
    constrain: {regex: "[a-z ]+\\."}             a regular expression (Rust `regex` syntax)
    constrain: {json_schema: {type: object}}     a JSON schema

A built-in constrains the document its check reads, part of which the prompt may hold; a user's
form constrains the completion alone. A grammar that cannot compile is a located spec error, found
without a tokenizer (`engine validate`, `plan`, `run`); what only the model's tokenizer can show
fails the generate stage naming the field. What the generate key holds: the form and its text
(`generate.constrain` is read), the grammar file's digest, the built-in grammar's digest and the
library's major.minor (`key_inputs`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.constrain.grammars import BUILTINS

FORMS = ("grammar", "regex", "json_schema")


class ConstraintError(ValueError):
    """What is wrong with a constraint, and the dotted field to point at."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Constraint:
    field: str  # the dotted spec path its errors name: generate.constrain, generate.constrain.regex
    form: str  # a built-in's name, or grammar | regex | json_schema
    grammar: str  # the library's grammar text
    begins: Callable[[str], int | None] | None  # a built-in's: where its document starts in a prompt
    unique_attributes: bool = False  # a built-in's: each XML attribute once in a start tag (xml_attributes.py)
    close_in_time: bool = False  # a built-in's: the budget's last tokens close the XML document (xml_closing.py)

    def prefix(self, prompt: str) -> str:
        """The part of a prompt that is already the constrained document ("" for a user's form)."""
        start = self.begins(prompt) if self.begins else None
        return "" if start is None else prompt[start:]


def read(value, root: Path) -> Constraint:
    """The constraint a `generate.constrain` value asks for, its grammar checked without a
    tokenizer; ConstraintError naming the field when it cannot compile."""
    from engine.constrain import library

    if isinstance(value, str):
        compiled = library.grammar("lark", BUILTINS[value].lark)
        builtin = BUILTINS[value]
        return _checked(Constraint("generate.constrain", value, compiled, builtin.begins, builtin.unique_attributes,
                                   builtin.close_in_time))
    form = next(key for key in FORMS if key in value)
    field = f"generate.constrain.{form}"
    text = value[form]
    if form == "grammar":
        path = root / text
        if not path.is_file():
            raise ConstraintError(field, f"{text}: no such file (looked at {path})")
        text = path.read_text(encoding="utf-8")
    elif form == "json_schema":
        text = json.dumps(value[form], sort_keys=True)
    try:
        compiled = library.grammar(form, text)
    except ValueError as exc:
        raise ConstraintError(field, f"cannot be read as a {form.replace('_', ' ')}: {exc}") from None
    return _checked(Constraint(field, form, compiled, None), value[form] if form == "grammar" else "")


def _checked(constraint: Constraint, file: str = "") -> Constraint:
    """The constraint, or a ConstraintError saying where its grammar does not compile (a place in
    a user's grammar file; none for a regex, which llguidance wraps in a grammar of its own)."""
    from engine.constrain import library

    error = library.syntax_error(constraint.grammar)
    if error:
        where, what = error
        if file:
            raise ConstraintError(constraint.field, f"{file}{', ' + where if where else ''}: does not compile: {what}")
        raise ConstraintError(constraint.field, f"does not compile: {what}")
    return constraint


def spec_problems(spec) -> list:
    """Located problems of `generate.constrain` in a spec and its sweep variants (each said once)."""
    from engine.errors import Problem

    found: dict = {}
    for one in (spec, *(variant for _, _, variant in getattr(spec, "variants", ()))):
        if not one.has("generate.constrain"):
            continue
        try:
            read(one.get("generate.constrain"), one.root)
        except ConstraintError as exc:
            place = one.place(exc.field) or one.place("generate.constrain") or one.place("generate")
            where = (place.file, place.line, place.col) if place else (one.path.name, 0, 0)
            found.setdefault(Problem(*where, "$." + exc.field, str(exc)))
    return list(found)


def key_inputs(spec) -> dict:
    """What a constrained generate key holds beyond the field's own value: the grammar file by its
    digest, a built-in grammar by the digest of its text (and the versions of its XML processors),
    the library's major.minor."""
    from engine.constrain import library
    from engine.core.payload import Known

    value = spec.get("generate.constrain")
    if value is None:
        return {}
    out: dict = {"constrain library": Known(f"{library.DISTRIBUTION} {library.version()}")}
    if isinstance(value, str):
        from engine.constrain import xml_attributes, xml_closing

        digest = hashlib.sha256(BUILTINS[value].lark.encode("utf-8")).hexdigest()[:16]
        unique = f", unique attributes {xml_attributes.VERSION}" if BUILTINS[value].unique_attributes else ""
        closing = f", closing in time {xml_closing.VERSION}" if BUILTINS[value].close_in_time else ""
        out[f"constrain {value}"] = Known(f"grammar {digest}{unique}{closing}")
    elif "grammar" in value:
        from engine.core.project import input_label

        path = spec.root / value["grammar"]
        out[input_label(spec, path)] = path
    return out
