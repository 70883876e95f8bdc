"""Console reporting with rich: one line per stage event, live progress bars for long work."""
from __future__ import annotations

import sys
import time
from typing import Any

from engine.core.runner import Event

_STYLE = {"started": ("▶", "bold cyan"), "cached": ("✓", "green"), "done": ("✓", "bold green"),
          "failed": ("✗", "bold red"), "skipped": ("-", "yellow"), "log": (" ", "dim")}


class ConsoleReporter:
    """Prints events as they come; bars for progress (transient, so the log stays readable)."""

    def __init__(self, stream=None, quiet: bool = False):
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.quiet = quiet
        self.events: list[Event] = []
        self._progress = None

    def event(self, event: Event) -> None:
        self.events.append(event)
        if self.quiet:
            return
        mark, style = _STYLE[event.kind]
        label = {"started": "running", "done": f"done in {event.seconds:.1f}s"}.get(event.kind, event.kind)
        if event.kind == "log":
            line = f"  [dim]{event.node}[/]  {_escape(event.message)}"
        else:
            line = f"[{style}]{mark} {event.node:<10}[/] {label}" + (f"  [dim]{_escape(event.message)}[/]" if event.message else "")
        self.console.print(line)

    def progress(self, node: str, total: float | None, description: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        if self.quiet:
            return _Bar(None, None)
        if self._progress is None:
            self._progress = Progress(
                TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                console=self.console, transient=True)
            self._progress.start()
        task = self._progress.add_task(f"{node}: {description}", total=total, status="")
        return _Bar(self, task)

    def _finish(self, task) -> None:
        if self._progress is None:
            return
        self._progress.remove_task(task)
        if not self._progress.tasks:
            self._progress.stop()
            self._progress = None


class _Bar:
    def __init__(self, reporter: ConsoleReporter | None, task):
        self.reporter, self.task = reporter, task
        self._last = 0.0

    def advance(self, steps: float = 1, **fields: Any) -> None:
        if self.reporter is None or self.reporter._progress is None:
            return
        status = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        self.reporter._progress.update(self.task, advance=steps, **({"status": status} if fields else {}))

    def close(self) -> None:
        if self.reporter is not None:
            self.reporter._finish(self.task)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
