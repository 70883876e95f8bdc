"""What a stage function receives: its params, its inputs, an empty output dir, and a reporter."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from engine.spec import FrozenDict, dotted_get


class ProgressBar(Protocol):
    def advance(self, steps: float = 1, **fields: Any) -> None: ...

    def close(self) -> None: ...


@dataclass
class StageContext:
    """Everything a stage may use. A stage writes only into `out` (and its `work` dir)."""

    name: str  # node name, e.g. "train"
    params: FrozenDict  # the spec fields this node reads, nested as in the spec
    inputs: dict[str, Path]  # input role ("model", "data", "train") -> the upstream output dir in the store
    out: Path  # empty; becomes the store entry
    work: Path  # survives interruption (checkpoints); named by the key, removed after commit
    seed: int
    spec_root: Path  # directory relative paths in the spec are resolved from
    runtime: FrozenDict  # never hashed: device, threads
    options: dict = field(default_factory=dict)  # command-line runtime flags (trust_remote_code)
    log: Callable[[str], None] = print
    progress: Callable[..., ProgressBar] | None = None  # progress(total, description) -> bar

    def get(self, dotted: str, default: Any = None) -> Any:
        return dotted_get(self.params, dotted, default)

    def bar(self, total: float | None, description: str) -> ProgressBar:
        if self.progress is None:
            return NoBar()
        return self.progress(total, description)


class NoBar:
    def advance(self, steps: float = 1, **fields: Any) -> None:
        pass

    def close(self) -> None:
        pass
