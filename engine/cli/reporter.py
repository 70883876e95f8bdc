"""Console reporting of a run: one line per stage event, live rich progress bars for long work.

Event lines are plain text (ANSI colour on a terminal), so a fully cached run does not pay for
importing rich; rich is loaded when the first progress bar starts, and prints the lines while
bars are live.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from engine.app.running import Event

_MARKS = {"started": "▶", "cached": "✓", "done": "✓", "failed": "✗", "skipped": "-", "log": " "}
_COLOURS = {"started": "1;36", "cached": "32", "done": "1;32", "failed": "1;31", "skipped": "33", "log": "2",
            "ok": "1;32", "note": "32", "error": "1;31"}
_RICH_STYLES = {"1;36": "bold cyan", "32": "green", "1;32": "bold green", "1;31": "bold red", "33": "yellow", "2": "dim"}


class ConsoleReporter:
    """Prints events as they come; bars for progress (transient, so the log stays readable)."""

    def __init__(self, stream=None, quiet: bool = False, hide_cached: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.hide_cached = hide_cached  # a search's later rounds: the stages of the trials before are cached
        self.colour = self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.events: list[Event] = []
        self._progress = None
        self._tasks: dict[str, list] = {}  # node -> its live progress tasks

    def event(self, event: Event) -> None:
        self.events.append(event)
        if event.kind in ("done", "failed"):  # a stage that raised never closed its bars
            for task in self._tasks.pop(event.node, []):
                self._finish(task)
        if event.kind == "log":
            self.say(f"  {event.node}  {event.message}", "log")
            return
        if event.kind == "cached" and self.hide_cached:
            return
        label = {"started": "running", "done": f"done in {event.seconds:.1f}s"}.get(event.kind, event.kind)
        head = f"{_MARKS[event.kind]} {event.node:<10} {label}"
        self.say(head + (f"  {event.message}" if event.message else ""), event.kind, bold_part=len(head))

    def say(self, text: str, style: str = "", bold_part: int | None = None) -> None:
        """One line to the console, coloured by `style` (an event kind, `ok`, `note` or `error`)."""
        if self.quiet:
            return
        code = _COLOURS.get(style)
        if self._progress is not None:
            from rich.text import Text

            line = Text(text)
            if code:
                line.stylize(_RICH_STYLES[code], 0, bold_part)
            self._progress.console.print(line, soft_wrap=True)
            return
        if self.colour and code:
            cut = len(text) if bold_part is None else bold_part
            text = f"\033[{code}m{text[:cut]}\033[0m{text[cut:]}"
        print(text, file=self.stream, flush=True)

    def progress(self, node: str, total: float | None, description: str):
        if self.quiet:
            return _Bar(None, None)
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        if self._progress is None:
            self._progress = Progress(
                TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                console=Console(file=self.stream, highlight=False), transient=True)
            self._progress.start()
        task = self._progress.add_task(f"{node}: {description}", total=total, status="")
        self._tasks.setdefault(node, []).append(task)
        return _Bar(self, task)

    def close(self) -> None:
        """Stop any live bars (and so show the cursor again): after a signal, an error, or the end."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def _finish(self, task) -> None:
        if self._progress is None or task not in self._progress.task_ids:
            return
        self._progress.remove_task(task)
        if not self._progress.tasks:
            self._progress.stop()
            self._progress = None


class _Bar:
    def __init__(self, reporter: ConsoleReporter | None, task):
        self.reporter, self.task = reporter, task

    def advance(self, steps: float = 1, **fields: Any) -> None:
        if self.reporter is None or self.reporter._progress is None:
            return
        status = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        self.reporter._progress.update(self.task, advance=steps, **({"status": status} if fields else {}))

    def close(self) -> None:
        if self.reporter is not None:
            self.reporter._finish(self.task)
