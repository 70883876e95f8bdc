"""Validation against the schema, reported as located problems a person can act on.

jsonschema finds the errors; this module rewrites each into `what is wrong and how to fix it`
(a suggestion for a misspelt key, the allowed values of an enum, the bound that was crossed)
and points it at the line of the key or value in the file that provided it.
"""
from __future__ import annotations

import difflib
import re
import string
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable

from engine.errors import Problem
from engine.spec import objectives, rules
from engine.spec import schema as spec_schema
from engine.spec.loader import Place, json_path

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

MAX_FORMAT_NUMBER = 1000  # largest width or precision in a data.text placeholder ({title:>9999999999} exhausts memory)

_TYPE_NAMES = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # imported only when a spec is actually validated

    return Draft202012Validator(spec_schema.schema())


def validate(data: dict, places: dict[tuple, Place], fallback_file: str) -> list[Problem]:
    """Every schema problem in `data`, located through `places`; empty when valid."""
    problems: list[Problem] = []
    task = data.get("task", "causal-lm")
    for error in _validator().iter_errors(data):
        if not objectives.replaced_rule(spec_schema.schema(), error):  # worded by engine/spec/objectives.py
            problems.extend(_explain(error, places, fallback_file, task))
    problems.extend(_problem(path, message, places, fallback_file, at_key)
                    for path, message, at_key in objectives.problems(data) + rules.problems(data))
    section = data.get("data") if isinstance(data.get("data"), dict) else {}
    for key in ("text", "prompt", "completion", "chosen", "rejected"):
        if isinstance(section.get(key), str):
            problems.extend(_problem(("data", key), message, places, fallback_file)
                            for message in template_problems(section[key]))
    if objectives.objective_of(data) == "sft":  # the other objectives' forms: objectives.problems
        problems.extend(_problem(("data", key), message, places, fallback_file, at_key=True)
                        for key, message in _form_clashes(section))
    unique = {(p.file, p.line, p.col, p.path, p.message): p for p in problems}
    return list(unique.values())


def _form_clashes(section: dict) -> list[tuple[str, str]]:
    """(key, message) for data keys that name two forms of example at once: text, prompt/completion, messages."""
    out = []
    if "messages" in section:
        out += [(key, f"does not go with data.messages (chat data); remove {key}, or messages for "
                      f"{'plain text' if key == 'text' else 'prompt/completion'} data")
                for key in ("text", "prompt", "completion") if key in section]
    elif "text" in section:
        out += [(key, "does not go with data.text: prompt/completion data replaces the text template; remove text")
                for key in ("prompt", "completion") if key in section]
    return out


def template_problems(template: str) -> list[str]:
    """What is wrong with a `data.text` template that the schema cannot see: its placeholders."""
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return [f"malformed template ({exc}); use {{field}}, and {{{{ for a literal brace"]
    out = []
    for name, spec in fields:
        shown = "{" + name + (":" + spec if spec else "") + "}"
        if not name.isidentifier():
            out.append(f"unsupported placeholder {shown}; use plain field names like {{title}}")
        elif "{" in spec:
            out.append(f"placeholder {shown} nests a placeholder in its format; give the width or precision as a number")
        else:
            numbers = [digits.lstrip("0") or "0" for digits in re.findall(r"\d+", spec)]
            huge = [n for n in numbers if len(n) > 9 or int(n) > MAX_FORMAT_NUMBER]
            if huge:
                out.append(f"placeholder {shown} asks for a width or precision of {huge[0]}; at most "
                           f"{MAX_FORMAT_NUMBER} is allowed (it builds a string that long for every record)")
    return out


def _locate(path: tuple, places: dict[tuple, Place], fallback_file: str, at_key: bool = False) -> tuple[str, int, int]:
    probe = path
    while probe not in places and probe:
        probe = probe[:-1]
    place = places.get(probe)
    if place is None:
        return fallback_file, 0, 0
    if at_key and probe == path:
        return place.file, place.key_line, place.key_col
    return place.file, place.line, place.col


def _problem(path: tuple, message: str, places, fallback_file, at_key=False) -> Problem:
    file, line, col = _locate(path, places, fallback_file, at_key)
    return Problem(file, line, col, json_path(path), message)


def show_value(value: Any) -> str:
    """A value as a person reads it in a spec: strings quoted, `true`/`false`/`null`."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _type_of(value: Any) -> str:
    for name, check in (("true/false", lambda v: isinstance(v, bool)), ("an integer", lambda v: isinstance(v, int)),
                        ("a number", lambda v: isinstance(v, float)), ("a string", lambda v: isinstance(v, str)),
                        ("a list", lambda v: isinstance(v, list)), ("a mapping", lambda v: isinstance(v, dict)),
                        ("null", lambda v: v is None)):
        if check(value):
            return name
    return type(value).__name__


@lru_cache(maxsize=1)
def _homes() -> dict[str, list[str]]:
    """Property name -> the sections that define it, for "learning_rate belongs under train"."""
    homes: dict[str, list[str]] = {}

    def walk(node: dict, prefix: str, depth: int) -> None:
        for name, sub in spec_schema.properties_at(node).items():
            homes.setdefault(name, []).append(prefix + name)
            if depth < 3:
                walk(sub, prefix + name + ".", depth + 1)

    walk(spec_schema.schema(), "", 0)
    return homes


# Fields a spec may still carry from an older engine, with what to do instead of "unknown key".
REMOVED = {
    ("model", "lora", "merge"): "was removed: a LoRA run's train entry now holds its adapter, and evaluate, generate, "
                                "`model.from` and `engine export --format hf` merge it into the base; delete this line",
}


def suggest_key(key: str, allowed: Iterable[str]) -> str:
    """` (did you mean X?)` for a near miss, or where the key belongs, or the allowed keys."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    homes = _homes().get(key)
    if homes:
        return f" ({key} belongs under {' or '.join(h.rsplit('.', 1)[0] or '$' for h in homes)})"
    return f"; allowed keys: {', '.join(allowed)}" if allowed else ""


def _explain(error: ValidationError, places, fallback_file, task: str = "causal-lm") -> list[Problem]:
    path = tuple(error.absolute_path)
    kind = error.validator
    value = error.instance
    here = lambda message, at_key=False: [_problem(path, message, places, fallback_file, at_key)]  # noqa: E731

    if kind == "additionalProperties":
        allowed = error.schema.get("properties", {}).keys()
        patterns = error.schema.get("patternProperties", {}).keys()
        out = []
        for key in value:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            message = REMOVED.get(path + (key,)) or "unknown key" + suggest_key(key, allowed)
            out.append(_problem(path + (key,), message, places, fallback_file, at_key=True))
        return out
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        return [_problem(path, f"missing required key {k!r}: {_describe_key(error.schema, k, path)}", places, fallback_file, at_key=True)
                for k in missing]
    if kind == "dependentRequired":
        out = []
        for key, needs in error.validator_value.items():
            if key in value:
                for need in needs:
                    if need not in value:
                        out.append(_problem(path + (key,), f"{key!r} needs {need!r} beside it: {_describe_key(error.schema, need, path)}",
                                            places, fallback_file, at_key=True))
        return out
    if kind == "enum":
        allowed = error.validator_value
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(a) for a in allowed], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
        return here(f"must be one of: {', '.join(show_value(a) for a in allowed)} (got {show_value(value)}){hint}")
    if kind == "const":
        if path == ("spec_version",):
            return here(f"unsupported spec_version {show_value(value)}: this engine reads spec_version {error.validator_value}")
        return here(f"must be {show_value(error.validator_value)} (got {show_value(value)})")
    if kind == "type":
        wanted = error.validator_value
        wanted = [wanted] if isinstance(wanted, str) else wanted
        got = "null" if value is None else f"{_type_of(value)} {show_value(value)}"
        return here(f"must be {' or '.join(_TYPE_NAMES[t] for t in wanted)} (got {got})")
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return here(f"must be {bounds[kind]} {error.validator_value} (got {show_value(value)})")
    if kind == "pattern":
        if path == ("name",):
            return here(f"must be lower-case letters, digits and dashes, starting with a letter or digit (got {show_value(value)})")
        return here(f"must match the pattern {error.validator_value} (got {show_value(value)})")
    if kind in ("minItems", "maxItems"):
        return here(f"must have {'at least' if kind == 'minItems' else 'at most'} {error.validator_value} item(s)")
    if kind in ("minLength", "maxLength"):
        return here("must not be empty" if kind == "minLength" and error.validator_value == 1 else f"length must be {'>=' if kind == 'minLength' else '<='} {error.validator_value}")
    if kind == "uniqueItems":
        return here("items must not repeat")
    if kind == "oneOf":
        return _explain_one_of(error, path, places, fallback_file, task)
    if kind == "anyOf" and all(set(alt) == {"required"} for alt in error.validator_value):  # data: source or sources
        keys = [k for alt in error.validator_value for k in alt["required"]]
        return here(f"missing required key: one of {', '.join(map(repr, keys))} ({_describe_key(error.schema, keys[0], path)})",
                    at_key=True)
    if kind == "not" and set(error.validator_value) == {"required"}:
        kto = " (of the objectives only train.objective kto reads a label)" if path == ("data",) else ""
        return [_problem(path + (key,), f"does not apply to task {task}{kto if key == 'label' else ''}; remove it", places,
                         fallback_file, at_key=True) for key in error.validator_value["required"] if key in value]
    if kind == "false" or error.validator_value is False:
        return here("is not allowed here", at_key=True)
    return here(error.message)


def _describe_key(node: dict, key: str, path: tuple = ()) -> str:
    """First sentence of a key's description (from the schema at hand, else from its place in the spec)."""
    sub = spec_schema.deref(node.get("properties", {}).get(key, {}))
    if "description" not in sub:
        sub = spec_schema.schema_at(tuple(p for p in path if isinstance(p, str)) + (key,)) or {}
    return sub.get("description", "").split(". ")[0].rstrip(".")


def _explain_one_of(error: ValidationError, path: tuple, places, fallback_file, task: str) -> list[Problem]:
    alternatives = error.validator_value
    value = error.instance
    keyed = [alt.get("required") for alt in alternatives]
    if all(k and set(alt) == {"required"} for k, alt in zip(keyed, alternatives)):
        # Presence alternatives: "give exactly one of these keys".
        names = [" + ".join(k) for k in keyed]
        present = [n for k, n in zip(keyed, names) if any(key in value for key in k)]
        if len(present) > 1:
            message = f"give exactly one of {', '.join(names)} (found {' and '.join(present)}); they are mutually exclusive"
            message += _inherited_hint(path, [k for k in value if any(k in keys for keys in keyed)], places)
        else:
            message = f"give one of {', '.join(names)}"
        return [_problem(path, message, places, fallback_file)]
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    if error.context is not None and len(by_branch) == len(alternatives):
        # No alternative matched: report the one whose type matched, if exactly one did.
        fitting = [errs for errs in by_branch.values()
                   if not any(e.validator in ("type", "oneOf") and not e.relative_path for e in errs)]
        if len(fitting) == 1:
            out: list[Problem] = []
            for sub in fitting[0]:
                out.extend(_explain(sub, places, fallback_file, task))
            return out
    shapes = [shape for alt in alternatives for shape in _shapes(alt)]
    return [_problem(path, f"must be {' or '.join(shapes) or 'one of the allowed forms'} (got {show_value(value)})", places, fallback_file)]


def _inherited_hint(path: tuple, keys: list[str], places) -> str:
    """How to drop a key a base spec (or the spec under a --set) gave, when its newer file gives a rival key."""
    files = {key: places[path + (key,)].file for key in keys if path + (key,) in places}
    newest = next((f for f in files.values() if f.startswith("--set ")), places[path].file if path in places else None)
    old = [key for key, file in files.items() if file != newest]
    if not old or len(old) == len(files):
        return ""
    key = old[0]
    dotted = ".".join(str(p) for p in path + (key,))
    how = f"--set {dotted}=null" if newest.startswith("--set ") else f"`{key}: null`"
    return f" ({key} comes from {files[key]}: {how} drops it)"


def _shapes(alt: dict) -> list[str]:
    """How a person would name the forms a schema allows: `a string`, `a list of strings`."""
    alt = spec_schema.deref(alt)
    if "enum" in alt:
        return ["one of " + ", ".join(show_value(a) for a in alt["enum"])]
    if alt.get("type") == "array":
        items = spec_schema.deref(alt.get("items", {}))
        return ["a list" + (f" of {items['type']}s" if "type" in items else "")]
    if "type" in alt:
        return [_TYPE_NAMES.get(alt["type"], alt["type"])]
    return [shape for sub in alt.get("oneOf", []) for shape in _shapes(sub)]
