"""One exception hierarchy; `engine.cli.main` is the one place that turns it into an exit code.

Every message says what went wrong, where, and how to fix it.
"""
from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """Base of every error the engine reports to a person (never with a traceback unless -v)."""

    exit_code = 1


class UsageError(EngineError):
    """Bad command-line usage: a missing file, an unknown stage name, a malformed --set."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One located problem in a spec: `file:line:col  $.json.path  message`."""

    file: str
    line: int  # 1-based; 0 when the problem has no place in a file (a --set value)
    col: int
    path: str  # JSON path such as `$.train.learning_rate`
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}  {self.path}  {self.message}" if self.path else f"{where}  {self.message}"


class SpecError(EngineError):
    """A spec that cannot be loaded or does not validate. Carries every problem found at once."""

    exit_code = 2

    def __init__(self, problems: list[Problem], heading: str | None = None):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.path))
        count = len(self.problems)
        head = heading or f"{count} problem{'s' if count != 1 else ''} in spec"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class StageError(EngineError):
    """A stage failed for a reason a person can act on (bad data, a model dir without weights)."""

    exit_code = 1


class StoreError(EngineError):
    """The store cannot be used (not writable, lock failure)."""

    exit_code = 1
