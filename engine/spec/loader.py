"""Strict YAML 1.2 loading that keeps a file position for every value.

Nothing in a spec is ever constructed as a Python object: the YAML is parsed into events and
nodes, any explicit tag is refused, and plain values are built here by hand from the resolved
scalar types. Duplicate keys, alias expansion bombs, huge or non-UTF-8 files and documents that
are not a mapping are errors with a position.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from engine.errors import Problem, SpecError

MAX_BYTES = 1 << 20  # a spec is a page of text; anything bigger is a mistake or an attack
MAX_NODES = 100_000  # values after alias expansion: stops "billion laughs" documents

JsonPath = tuple  # ("train", "learning_rate") or ("generate", "prompts", 0)


@dataclass(frozen=True)
class Place:
    """Where a value sits: its file, and the 1-based line and column of its key and its value."""

    file: str
    line: int
    col: int
    key_line: int = 0
    key_col: int = 0


@dataclass
class Document:
    """A loaded YAML mapping: plain data plus the place of every value, by JSON path."""

    file: str
    data: dict
    places: dict[JsonPath, Place] = field(default_factory=dict)


def json_path(path: JsonPath) -> str:
    """`("train", "lr")` -> `$.train.lr`; list indices as `[0]`."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def load_file(path: Path, shown_as: str | None = None, read: Callable[[Path], bytes] | None = None) -> Document:
    """Read and strictly parse one spec file. `shown_as` is how the file is named in errors;
    `read` replaces reading from disk (a spec at a git revision)."""
    name = shown_as or str(path)
    try:
        raw = read(path) if read else path.read_bytes()
    except FileNotFoundError:
        raise SpecError([Problem(name, 0, 0, "", "file not found")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(name, 0, 0, "", "is a directory, not a spec file")]) from None
    except OSError as exc:
        raise SpecError([Problem(name, 0, 0, "", f"cannot read: {exc.strerror}")]) from exc
    if len(raw) > MAX_BYTES:
        raise SpecError([Problem(name, 0, 0, "", f"file is {len(raw):,} bytes; a spec may be at most {MAX_BYTES:,}")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Problem(name, line, col, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8")]) from None
    return load_text(text, name)


def load_text(text: str, name: str) -> Document:
    """Parse YAML text strictly into a Document (see module docstring for what is refused)."""
    node = _compose(text, name)
    if node is None:
        raise SpecError([Problem(name, 1, 1, "", "the file is empty; a spec is a YAML mapping")])
    if not isinstance(node, MappingNode):
        line, col = _pos(node)
        raise SpecError([Problem(name, line, col, "$", "the document must be a mapping of keys to values")])
    builder = _Builder(name)
    data = builder.build(node, ())
    return Document(name, data, builder.places)


def load_value(text: str, name: str, path: JsonPath) -> Any:
    """Parse one YAML value (a `--set` right-hand side) as strictly as a file."""
    node = _compose(text, name)
    return None if node is None else _Builder(name).build(node, path)


def _compose(text: str, name: str):
    yaml = YAML(typ="safe", pure=True)
    text = text.lstrip("\ufeff")
    try:
        _refuse_tags(yaml, text, name)
        node = yaml.compose(text)
    except SpecError:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise SpecError([Problem(name, line, col, "", f"YAML syntax error: {what}")]) from None
    except YAMLError as exc:
        raise SpecError([Problem(name, 0, 0, "", f"YAML error: {exc}")]) from None
    return node


def _refuse_tags(yaml: YAML, text: str, name: str) -> None:
    """Refuse every explicit tag (`!!python/object/apply:...`, `!!str`, `!custom`)."""
    for event in yaml.parse(text):
        tag = getattr(event, "tag", None)
        if tag is not None:
            mark = event.start_mark
            raise SpecError([Problem(name, mark.line + 1, mark.column + 1, "", f"explicit YAML tag {tag!r} is not allowed in a spec; remove it")])


def _pos(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Turns composed YAML nodes into plain dict/list/scalars, recording places."""

    def __init__(self, name: str):
        self.name = name
        self.places: dict[JsonPath, Place] = {}
        self.count = 0
        self.active: set[int] = set()

    def error(self, node, path: JsonPath, message: str) -> SpecError:
        line, col = _pos(node)
        return SpecError([Problem(self.name, line, col, json_path(path), message)])

    def build(self, node, path: JsonPath, key_node=None) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.error(node, path, f"more than {MAX_NODES:,} values after expanding aliases; simplify the anchors")
        line, col = _pos(node)
        key_line, key_col = _pos(key_node) if key_node is not None else (line, col)
        self.places[path] = Place(self.name, line, col, key_line, key_col)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise self.error(node, path, "an alias refers to the value that contains it (recursive anchor)")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            out: dict = {}
            for key_node_, value_node in node.value:
                if not isinstance(key_node_, ScalarNode):
                    raise self.error(key_node_, path, "a key must be a plain string")
                key = key_node_.value
                if key == "<<":
                    raise self.error(key_node_, path, "YAML merge keys (<<) are not supported; use `extends`")
                if key in out:
                    first = self.places[path + (key,)]
                    raise self.error(key_node_, path + (key,), f"duplicate key {key!r} (first defined at line {first.key_line})")
                out[key] = self.build(value_node, path + (key,), key_node_)
            return out
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        tag, value = node.tag, node.value
        kind = tag.rsplit(":", 1)[-1]
        if kind == "null":
            return None
        if kind == "bool":
            return value.lower() == "true"
        if kind == "int":
            text = value.replace("_", "")
            if text.lower().startswith(("0x", "-0x", "+0x")):
                return int(text, 16)
            if text.lower().startswith(("0o", "-0o", "+0o")):
                return int(text, 8)
            return int(text)
        if kind == "float":
            text = value.replace("_", "").lower()
            if text.endswith((".inf", ".nan")):
                raise self.error(node, path, f"{value!r} is not a finite number")
            number = float(text)
            if not math.isfinite(number):
                raise self.error(node, path, f"{value!r} is not a finite number")
            return number
        if kind == "str":
            return value
        raise self.error(node, path, f"unsupported YAML value type {tag!r}")
