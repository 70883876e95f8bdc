"""The stage contract: what core needs of a stage kind, and nothing more.

A stage kind is any object with these attributes (the modules in `engine/stages/` are; so are
the fakes in tests). Core receives kinds in a registry, `{kind name: StageKind}`, passed in by
the caller: core never imports `engine.stages`.

    VERSION    bumped when the same inputs would now give different outputs
    LIBRARIES  distributions whose major.minor version is part of the key; a kind whose libraries
               depend on the spec (train imports TRL for some objectives) also has
               `libraries(spec)`, which then gives them. Optional.
    reads      the dotted spec paths the stage's output depends on (hashed; only those)
    IGNORES    {dotted path: reason} of fields under a section it reads that do not change its
               output (logging cadence, checkpoint cadence): left out of the key, so changing
               them reruns nothing; a kind where that depends on the spec also has `ignores(spec)`
               (train keys save_every when it averages checkpoints). Optional.
    inputs     {label: path or Known} of the files it reads, resolved once; what is hashed is
               what `run` reads
    ROLES      the input roles a pipeline may bind (`ctx.inputs[role]`); binding another is an error
    PRODUCES   what `run` writes into ctx.out; the first that exists is the output a person opens
    run        does the work into ctx.out; returns {"metrics", "facts", "digests"} (all optional)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable


@runtime_checkable
class StageKind(Protocol):
    VERSION: int
    LIBRARIES: tuple[str, ...]
    ROLES: tuple[str, ...]
    PRODUCES: tuple[str, ...]

    def reads(self, spec: Any) -> tuple[str, ...]: ...

    def inputs(self, spec: Any) -> dict[str, Path | str]: ...

    def run(self, ctx: Any) -> dict | None: ...


Registry = Mapping[str, StageKind]


def ignored_fields(kind: StageKind, spec: Any = None) -> Mapping[str, str]:
    """The fields a stage declares it ignores, with the reason (empty if it declares none):
    `kind.ignores(spec)` where the kind has it (a field that counts only in some specs), else IGNORES."""
    chosen = getattr(kind, "ignores", None)
    return chosen(spec) if chosen is not None and spec is not None else getattr(kind, "IGNORES", {})


def libraries_of(kind: StageKind, spec: Any) -> tuple[str, ...]:
    """The libraries whose versions go into a node's key: `kind.libraries(spec)` where the kind has it, else LIBRARIES."""
    chosen = getattr(kind, "libraries", None)
    return tuple(chosen(spec)) if chosen is not None else kind.LIBRARIES
