"""Records from a data source, turned into texts by the template, split into train/validation/test.

Local files are parsed here, one file at a time, so that an error names the file and the
record number; `datasets` takes over for tokenization and storage.
"""
from __future__ import annotations

import csv
import fnmatch
import glob
import json
import math
import os
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import Problem, SpecError, StageError

SPLITS = ("train", "validation", "test")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet",
              ".txt": "txt", ".md": "txt", ".abc": "txt"}


@dataclass(frozen=True)
class Record:
    fields: dict[str, Any]
    origin: str  # "data/x.jsonl record 17", for errors


class BadRows:
    """The `data.on_bad_rows` policy: stop at a malformed row (`error`), or leave it out and count it (`skip`)."""

    def __init__(self, policy: str = "error"):
        self.policy = policy
        self.skipped: list[str] = []  # "data/x.csv line 7: 4 fields, the header has 3"

    def reject(self, origin: str, problem: str, fix: str) -> None:
        if self.policy == "error":
            raise StageError(f"{origin}: {problem}; {fix}, or set data.on_bad_rows: skip to leave such rows out")
        self.skipped.append(f"{origin}: {problem}")


def _located(spec_place, message: str, where: str = "$.data.source.files") -> SpecError:
    if spec_place is None:
        return SpecError([Problem("spec", 0, 0, where, message)])
    return SpecError([Problem(spec_place.file, spec_place.line, spec_place.col, where, message)])


def source_files(source: dict, root: Path, place=None, where: str = "$.data.source.files") -> dict[str, list[str]]:
    """{split or "all": [files]} of a `files` source, globs expanded and sorted; errors (at `place`,
    the JSON path `where`) if none match."""
    spec_files = source["files"]
    groups = spec_files if isinstance(spec_files, dict) else {"all": spec_files}
    out: dict[str, list[str]] = {}
    for split, patterns in groups.items():
        patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        found: list[str] = []
        for pattern in patterns:
            matches = _expand(os.path.join(root, pattern))
            if not matches:
                what = "no file matches" if glob.has_magic(pattern) else "data file not found:"
                raise _located(place, f"{what} {pattern} (looked in {root})", where)
            found.extend(matches)
        out[split] = found
    return out


def _expand(pattern: str) -> list[str]:
    """Files matching a path or glob, sorted. A pattern with magic only in its last part is read
    with one scandir (file types from the directory listing, no stat per file)."""
    if not glob.has_magic(pattern):
        return [pattern] if os.path.isfile(pattern) else []
    folder, last = os.path.split(pattern)
    if glob.has_magic(folder) or "**" in last:
        return sorted(name for name in glob.glob(pattern, recursive=True) if os.path.isfile(name))
    try:
        with os.scandir(folder) as entries:
            names = [e.path for e in entries if fnmatch.fnmatchcase(e.name, last) and not e.name.startswith(".") and e.is_file()]
    except OSError:
        return []
    return sorted(names)


def read_file(path: Path, fmt: str, txt_unit: str, label: str, bad_rows: BadRows | None = None) -> list[Record]:
    """Records of one file; `label` names it in errors; malformed rows go to `bad_rows` (default: an error)."""
    bad_rows = bad_rows or BadRows()
    if fmt == "auto":
        fmt = EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise StageError(f"{label}: cannot tell the format from the extension {path.suffix!r}; set data.source.format")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        return [Record(r, f"{label} row {i + 1}") for i, r in enumerate(rows)]
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StageError(f"{label} line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); convert the file to UTF-8") from None
    del raw
    if fmt == "jsonl":
        return _jsonl_records(text, label, bad_rows)
    if fmt == "json":
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise StageError(f"{label}: not valid JSON ({exc})") from None
        if isinstance(value, dict):
            lists = [v for v in value.values() if isinstance(v, list)]
            value = lists[0] if len(lists) == 1 else [value]
        if not all(isinstance(v, dict) for v in value):
            raise StageError(f"{label}: expected a list of JSON objects")
        return [Record(v, f"{label} record {i + 1}") for i, v in enumerate(value)]
    if fmt == "csv":
        return _csv_records(text, label, bad_rows)
    if txt_unit == "file":
        return [Record({"text": text}, label)]
    if txt_unit == "line":
        return [Record({"text": line}, f"{label} line {i + 1}") for i, line in enumerate(text.splitlines()) if line.strip()]
    blocks, start, current = [], 1, []
    for number, line in enumerate(text.splitlines() + [""], 1):
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append(Record({"text": "\n".join(current)}, f"{label} block at line {start}"))
            current = []
    return blocks


def _jsonl_records(text: str, label: str, bad_rows: BadRows) -> list[Record]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        origin = f"{label} line {number}"
        try:
            value = json.loads(line)
        except ValueError as exc:
            bad_rows.reject(origin, f"not valid JSON ({exc})", "fix the line")
            continue
        if not isinstance(value, dict):
            bad_rows.reject(origin, f"expected a JSON object per line, got {type(value).__name__}", "write one {...} per line")
            continue
        records.append(Record(value, origin))
    return records


def _csv_records(text: str, label: str, bad_rows: BadRows) -> list[Record]:
    """Rows as {header: value}; a row with more or fewer fields than the header is a bad row (an unquoted
    comma would otherwise shift or drop text silently). Origins name the line the row starts on."""
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        return []
    if not header:
        raise StageError(f"{label} line 1: the first line of a CSV file must be its header (the column names)")
    records, start = [], reader.line_num + 1
    for row in reader:
        origin, start = f"{label} line {start}", reader.line_num + 1
        if not row or (len(row) == 1 and len(header) > 1 and not row[0].strip()):
            continue  # a blank line
        if len(row) > len(header):
            bad_rows.reject(origin, f"{len(row)} fields, but the header has {len(header)}",
                            'quote a field that contains a comma ("like, this")')
        elif len(row) < len(header):
            bad_rows.reject(origin, f"{len(row)} fields, but the header has {len(header)} ({', '.join(header)})",
                            "give every column a value (an empty one is written ,,)")
        else:
            records.append(Record(dict(zip(header, row)), origin))
    return records


def template_fields(template: str, field: str = "data.text") -> list[str]:
    """Field names used by a `{field}` template (errors, naming the spec field, on a malformed template)."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise StageError(f"{field} template is malformed ({exc}); use {{field}}, and {{{{ for a literal brace") from None
    for name in names:
        if not name or not name.isidentifier():
            raise StageError(f"{field} template has an unsupported placeholder {{{name}}}; use plain field names like {{title}}")
    return names


def finite_only(records: list[Record], uses: dict[str, str], bad_rows: BadRows) -> list[Record]:
    """The records whose used fields ({field: purpose}) hold no NaN or infinity.

    `json.loads` reads `NaN`, `Infinity` and `1e999` as floats; as a label they would become the
    classes 'nan' and 'inf', in a template the text "nan".
    """
    kept = []
    for record in records:
        bad = next(((name, purpose) for name, purpose in uses.items() if _non_finite(record.fields.get(name))), None)
        if bad is None:
            kept.append(record)
        else:
            name, purpose = bad
            bad_rows.reject(record.origin, f"field {name!r} ({purpose}) is {_show_number(record.fields[name])}",
                            "give a finite number or a string")
    return kept


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(map(_non_finite, value))
    if isinstance(value, dict):
        return any(map(_non_finite, value.values()))
    return False


def _show_number(value: Any) -> str:
    return str(value) if isinstance(value, float) else f"{value!r} (with NaN or infinity inside)"


def field_values(records: list[Record], name: str, purpose: str) -> list:
    """Each record's value of one field; a record without it is an error naming the record."""
    out = []
    for record in records:
        value = record.fields.get(name)
        if value is None or value == "":
            have = ", ".join(sorted(record.fields)) or "none"
            raise StageError(f"{record.origin}: no field {name!r} for {purpose} (fields: {have})")
        out.append(value)
    return out


def render(records: list[Record], template: str, field: str = "data.text") -> list[str]:
    """Texts from records; a record without a template field is an error naming it (and `field`, the template's place)."""
    names = template_fields(template, field)
    texts = []
    for record in records:
        missing = [n for n in names if n not in record.fields or record.fields[n] is None]
        if missing:
            have = ", ".join(sorted(record.fields)) or "none"
            raise StageError(f"{record.origin}: no field {missing[0]!r} for the template {field} (fields: {have})")
        try:
            texts.append(template.format_map({n: record.fields[n] for n in names}))
        except (ValueError, TypeError) as exc:  # a format spec that does not fit the value: {title:d} on a string
            raise StageError(f"{record.origin}: the template {field} does not apply to this record ({exc})") from None
    return texts


def split_indices(count: int, validation: float, test: float, seed: int, groups: list | None = None) -> dict[str, list[int]]:
    """Seeded shuffle, then test and validation taken from the front; the rest is train.

    With `groups` (one key per record), whole groups are shuffled and assigned, so no group is
    in two splits; the fractions then count groups.
    """
    keys = sorted(set(groups), key=str) if groups is not None else list(range(count))
    order = list(keys)
    random.Random(seed).shuffle(order)
    n = len(order)
    n_test = round(n * test) if test else 0
    n_val = round(n * validation) if validation else 0
    if test and n_test == 0 and n >= 3:
        n_test = 1
    if validation and n_val == 0 and n >= 3:
        n_val = 1
    where = {key: "test" for key in order[:n_test]}
    where.update({key: "validation" for key in order[n_test:n_test + n_val]})
    out: dict[str, list[int]] = {split: [] for split in SPLITS}
    for index in range(count):
        out[where.get(groups[index] if groups is not None else index, "train")].append(index)
    return out
