"""What the data stage would find wrong with a spec's data files, found cheaply for `engine validate`.

    data.source.files --expand--> files (each must exist, inside the project)
          --first record of each--> the fields the templates, data.label and data.split.by name

The files are expanded and parsed by the data stage's own code (engine.dataprep.rows), so
`validate`, `plan` and `run` agree on what is missing and say it in the same words; only the
first record of a file is read (a JSON file, which is one value, is read whole). No model, no
tokenizer, nothing heavy is imported.
"""
from __future__ import annotations

import os
from pathlib import Path

from engine.errors import Problem, SpecError, StageError, UsageError

MAX_LINES = 1000  # a JSONL or CSV file whose first lines hold no good record is left to the data stage


def sources_of(spec) -> list[tuple[tuple, dict]]:
    """(path in the spec, source) of `data.source`, or of each of `data.sources`."""
    if spec.has("data.sources"):
        return [(("data", "sources", i, "source"), entry["source"]) for i, entry in enumerate(spec.get("data.sources"))]
    return [(("data", "source"), spec.get("data.source"))]


def data_problems(spec) -> list[Problem]:
    """Every missing data file, and every field a template (or data.label, data.split.by) names
    that a file's first record lacks, located in the spec."""
    from engine.core.project import input_label
    from engine.dataprep import rows

    problems = []
    for at, source in sources_of(spec):
        if "files" in source:  # a packaged corpus: its fields are the corpus's own
            problems += _source_problems(spec, source, at + ("files",))
    return list(dict.fromkeys(problems))


def _source_problems(spec, source: dict, at: tuple) -> list[Problem]:
    from engine.core.project import input_label
    from engine.dataprep import rows
    from engine.spec.loader import json_path

    place, where = spec.places.get(at), json_path(at)
    groups = source["files"] if isinstance(source["files"], dict) else {"all": source["files"]}
    problems, files = [], []
    for patterns in groups.values():
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            try:
                files += rows.source_files({"files": pattern}, spec.root, place, where)["all"]
            except SpecError as exc:
                problems += exc.problems
    bad_rows = rows.BadRows(spec.get("data.on_bad_rows", "error"))
    for path in dict.fromkeys(files):
        label = Path(os.path.relpath(path, spec.root)).as_posix()  # as the data stage names it
        try:
            input_label(spec, path)  # a file outside the project is refused before it is read, as `plan` does
            record = first_record(Path(path), source["format"], source["txt_unit"], label, bad_rows)
        except (UsageError, StageError) as exc:
            problems.append(_problem(spec, at, str(exc)))
            continue
        except OSError as exc:
            problems.append(_problem(spec, at, f"{label}: cannot read ({exc.strerror or exc})"))
            continue
        if record is not None:
            problems += _field_problems(spec, record)
    return problems


def first_record(path: Path, fmt: str, txt_unit: str, label: str, bad_rows):
    """The first record of a data file (None if it has none), read with the data stage's readers."""
    from engine.dataprep import rows

    if fmt == "auto":
        fmt = rows.EXTENSIONS.get(path.suffix.lower(), "auto")  # unknown: read_file says so
    if fmt == "txt":
        return rows.Record({"text": ""}, label)  # plain text has one field, `text`
    if fmt == "parquet":
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(path).iter_batches(batch_size=1), None)
        return rows.Record(batch.to_pylist()[0], f"{label} row 1") if batch is not None and batch.num_rows else None
    if fmt not in ("jsonl", "csv"):
        found = rows.read_file(path, fmt, txt_unit, label, bad_rows)
        return found[0] if found else None
    parse = rows._jsonl_records if fmt == "jsonl" else rows._csv_records
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            lines: list[str] = []
            for line in handle:
                lines.append(line)
                if line.strip():
                    found = parse("".join(lines), label, bad_rows)  # the prefix: line numbers stay right
                    if found:
                        return found[0]
                if len(lines) >= MAX_LINES:
                    return None
    except UnicodeDecodeError:
        rows.read_file(path, fmt, txt_unit, label, bad_rows)  # raises the data stage's message, with the line
    return None


def _field_problems(spec, record) -> list[Problem]:
    """The fields the data stage reads from every record, checked on one (same messages)."""
    from engine.dataprep import instructions
    from engine.dataprep import rows

    data = spec.get("data")
    form = instructions.mode(data)
    checks = {"text": ("text",), "completion": ("prompt", "completion"), "chat": (), "pairs": ("prompt", "chosen", "rejected"),
              "graded": ("prompt", "completion"), "prompts": ("prompt",)}[form]
    out = []
    for key in checks:
        try:
            rows.render([record], data[key], f"data.{key}")
        except StageError as exc:
            out.append(_problem(spec, f"data.{key}", str(exc)))
    uses = {"data.messages": "the chat turns data.messages"} if form == "chat" else {}
    uses.update({"data.label": "the label data.label", "data.split.by": "data.split.by"})
    for dotted, purpose in uses.items():
        name = spec.get(dotted)
        if name:
            try:
                rows.field_values([record], name, purpose)
            except StageError as exc:
                out.append(_problem(spec, dotted, str(exc)))
    return out


def _problem(spec, dotted: str | tuple, message: str) -> Problem:
    from engine.spec.loader import json_path
    from engine.spec.validate import _locate

    path = tuple(dotted.split(".")) if isinstance(dotted, str) else dotted
    file, line, col = _locate(path, spec.places, str(spec.path))
    return Problem(file, line, col, json_path(path), message)
