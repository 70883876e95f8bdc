"""`engine compare`: several runs side by side, the fields and inputs that differ and the headline
numbers, in a table that fits the terminal.

The terminal layout is the first of these that fits the width without cutting a word:

    one row per run        run │ train.learning_rate │ eval.loss │ ...
    one column per run     (field or metric) │ run 1 │ run 2 │ ...      (few runs, many columns)
    one row per run, the columns in several tables, each repeating the run column

Cells may wrap at spaces; nothing is ever cut short with an ellipsis.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.plan import MISSING
from engine.review.changes import show_value
from engine.review.diff_report import show_input
from engine.review.metrics import SHOWN_STATES, cell, headline, metric_names, short_name
from engine.spec import thaw


@dataclass
class Column:
    key: str  # full name, for JSON: `train.learning_rate`, `input data/x.json`, `evaluate.loss`
    header: str  # short, for tables: `eval.loss`
    cells: list[str]  # one per run
    metric: tuple[str, str] | None = None  # (node, metric) of a metric column


def run_names(sides) -> tuple[str | None, list[str]]:
    """(title, short names): one spec over revisions is `specs/x.yaml` over `HEAD~1`, `working
    tree`; specs of one folder are named by their stems, under the folder."""
    import os

    labels = [side.label for side in sides]
    if len({side.source.path for side in sides}) == 1 and len(sides) > 1:
        return labels[-1].split(":", 1)[-1], [side.source.rev or "working tree" for side in sides]
    folder = os.path.commonprefix(labels).rpartition("/")[0]
    stems = [label[len(folder) + 1 if folder else 0:] for label in labels]
    stems = [stem.rsplit(".", 1)[0] if stem.endswith((".yaml", ".yml")) else stem for stem in stems]
    if len(set(stems)) == len(stems) and all(stems) and all(":" not in label for label in labels):
        return (f"{folder}/" if folder else None), stems
    return None, labels


def columns(sides, every_metric: bool) -> list[Column]:
    """The headline numbers (every number with `every_metric`), the files read by every run whose
    content differs, and the fields that differ between the runs (a list as a whole)."""
    if every_metric:
        wanted = metric_names(*sides)
    else:
        present = set(metric_names(*sides))
        wanted = list(dict.fromkeys(nm for side in sides for nm in headline(side.spec) if nm in present))
    out = [Column(f"{node}.{metric}", f"{node}.{metric}" if every_metric else short_name(node, metric),
                  [cell(side, node, metric) for side in sides], (node, metric)) for node, metric in wanted]
    out += _input_columns(sides)
    flat = [_leaves(thaw(side.spec.tree)) for side in sides]
    differing = {f for f in set().union(*flat) if len({_key(values.get(f, MISSING)) for values in flat}) > 1}
    out += [Column(f, f, [show_value(values.get(f, MISSING)) for values in flat])
            for f in sorted(differing - {"name", "description"})]
    return out


def _leaves(value, prefix: str = "") -> dict[str, object]:
    """`{"train": {"epochs": 3}}` -> `{"train.epochs": 3}`, with a list as one value."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, object] = {}
    for key, sub in value.items():
        out.update(_leaves(sub, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _key(value) -> str:
    """Values compared as the spec compares them (1 == 1.0, but True != 1)."""
    import json

    return json.dumps(value, sort_keys=True) if not isinstance(value, float) or not value.is_integer() else str(int(value))


def _input_columns(sides) -> list[Column]:
    """Files every run reads whose content differs (a file only some runs read comes with a field
    that differs, shown already); more than three in one stage make one column for the stage."""
    if any(side.inputs is None for side in sides):
        return []
    by_node: dict[str, list[str]] = {}
    for node in dict.fromkeys(n for side in sides for n in side.inputs):
        maps = [side.inputs.get(node) for side in sides]
        if any(m is None for m in maps):
            continue
        common = set.intersection(*(set(m) for m in maps))
        by_node[node] = sorted(label for label in common if len({m[label] for m in maps}) > 1)
    out, seen = [], set()
    for node, labels in by_node.items():
        if len(labels) > 3:
            from engine.core.canonical import sha256_of

            cells = [sha256_of({label: side.inputs[node][label] for label in labels})[:12] for side in sides]
            column = Column(f"input {node} ({len(labels)} files)", f"{node} inputs", cells)
        else:
            column = None
            for label in labels:
                if label not in seen:
                    seen.add(label)
                    out.append(Column(f"input {label}", label, [show_input(side.inputs[node][label]) for side in sides]))
        if column and tuple(column.cells) not in {tuple(c.cells) for c in out}:
            out.append(column)
    return out


def as_json(sides) -> list[dict]:
    """One object per run: the differing fields and inputs as shown, and every metric as
    {"value": number or null, "state": current | out of date | not run | ...}."""
    cols = columns(sides, every_metric=True)
    rows = []
    for i, side in enumerate(sides):
        row: dict = {"run": side.label, "record": side.standing()}
        for column in cols:
            if column.metric:
                state, metrics = side.evidence().get(column.metric[0], (None, {}))
                row[column.key] = {"value": metrics.get(column.metric[1]), "state": state}
            else:
                row[column.key] = column.cells[i]
        rows.append(row)
    return rows


def markdown(sides, every_metric: bool) -> str:
    title, names = run_names(sides)
    cols = columns(sides, every_metric)
    lines = [f"**{title}**", ""] if title else []
    lines += ["| run | " + " | ".join(c.header for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for i, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(c.cells[i].replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def terminal(sides, every_metric: bool, console) -> None:
    from rich.markup import escape
    from rich.measure import Measurement

    title, names = run_names(sides)
    cols = columns(sides, every_metric)
    if title:
        console.print(f"[bold]{escape(title)}[/]")
    if not cols:
        console.print("the runs do not differ, and have no numbers to show")
        return

    def width(table, natural: bool = True) -> int:
        measured = Measurement.get(console, console.options.update_width(100_000), table)  # unclamped
        return measured.maximum if natural else measured.minimum

    by_row = _by_row(names, cols)
    if width(by_row) <= console.width:
        console.print(by_row)
        return
    by_column = _by_column(names, cols)
    if width(by_column, natural=False) <= console.width:
        console.print(by_column)
        return
    chunks: list[list[Column]] = [[]]
    for column in cols:  # several tables, as many columns in each as fit
        if chunks[-1] and width(_by_row(names, chunks[-1] + [column])) > console.width:
            chunks.append([])
        chunks[-1].append(column)
    for i, chunk in enumerate(chunks):
        if i:
            console.print()
        console.print(_by_row(names, chunk))


def _table():
    from rich import box
    from rich.table import Table

    return Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)


def _by_row(names: list[str], cols: list[Column]):
    from rich.markup import escape

    table = _table()
    _add_column(table, "run", names)
    for column in cols:
        _add_column(table, column.header, column.cells)
    for i, name in enumerate(names):
        table.add_row(escape(name), *(_styled(c.cells[i]) for c in cols))
    return table


def _by_column(names: list[str], cols: list[Column]):
    """Runs as columns; a field name wraps after a dot, and only a value word longer than
    LONG_WORD characters (a long list item) may break across lines."""
    from rich.markup import escape

    table = _table()
    headers = [_wrap_dotted(c.header, 28) for c in cols]
    _add_column(table, "", headers)
    for i, name in enumerate(names):
        _add_column(table, name, [c.cells[i] for c in cols], LONG_WORD)
    for i, (header, column) in enumerate(zip(headers, cols)):
        last_number = column.metric is not None and (i + 1 == len(cols) or cols[i + 1].metric is None)
        table.add_row(escape(header), *(_styled(c) for c in column.cells), end_section=last_number)
    return table


LONG_WORD = 24


def _add_column(table, header: str, cells: list[str], longest_word: int = 60) -> None:
    """A column never narrower than its longest word (up to `longest_word`): text wraps at
    spaces and line ends, and words stay whole."""
    from rich.markup import escape

    longest = max(len(word) for text in [header, *cells] for word in text.split() or [""])
    table.add_column(escape(header), min_width=min(longest, longest_word), overflow="fold")


def _wrap_dotted(name: str, width: int) -> str:
    """`model.config.tokenizer.train_vocab_size` as lines of at most `width`, broken after dots."""
    lines = [""]
    for part in name.replace(".", ".\0").split("\0"):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def _styled(text: str) -> str:
    from rich.markup import escape

    return f"[yellow]{text}[/]" if text in SHOWN_STATES else escape(text)
