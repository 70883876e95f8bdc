"""An experiment opened: a spec with its overrides, its store, its stage graph and its record.

    spec.yaml + --set ──load──► Spec ──resolve──► Graph
    --store / $ENGINE_STORE / .engine/ at the project root ──► Store
    Spec + overrides ──► record file (beside the spec; a --set run's in the store) ──► record
    Graph + Store + record ──► statuses (current / out of date / not run, with reasons)

Every command that reads a spec opens it here, so the store and the record file are chosen by one
rule in one place; the commands that name no spec (`cache ...`) open the store by the same rule
from the current folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from engine.core.digests import DigestCache
from engine.core.graph import Graph
from engine.core.record import read_record, record_file, spec_label
from engine.core.status import NodeStatus
from engine.core.store import Store, default_root
from engine.spec import Spec

__all__ = ["Experiment", "open_experiment", "open_store", "spec_label"]


def open_store(store: str | Path | None = None, near: Path | None = None) -> Store:
    """The store of a command: `store` (--store) when given, else $ENGINE_STORE, else `.engine/` at
    the project root of `near` (the spec's folder; the current folder for a command without a spec)."""
    return Store(Path(store).resolve() if store else default_root(near if near is not None else Path.cwd()))


@dataclass
class Experiment:
    """A spec as it is now, with what every command reads of it."""

    spec: Spec
    overrides: list[str]
    store: Store
    graph: Graph
    digests: DigestCache
    record_file: Path  # where this spec's record is (with these overrides)
    record: dict | None  # the record at record_file; None when there is none yet
    study: Any = None  # a sweep.search's study (engine/app/study.py): its trials are the graph's variants
    _statuses: dict[str, NodeStatus] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """The spec's path relative to its project root (the same in every clone)."""
        return spec_label(self.spec)

    def statuses(self) -> dict[str, NodeStatus]:
        """Per node: is the record still the spec's result (engine/core/status.py)."""
        if self._statuses is None:
            from engine.core.status import record_status

            self._statuses = record_status(self.graph, self.store, self.digests, self.record)
        return self._statuses


def open_experiment(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = (), store: str | Path | None = None,
                    *, registry: Mapping | None = None, rehash: bool = False) -> Experiment:
    """Load and validate a spec, choose its store and record file, resolve its graph and read its
    record. Writes nothing (the store folder is created by what writes into it)."""
    from engine.pipeline import resolve_spec
    from engine.spec import load_spec

    overrides = list(overrides)
    spec = load_spec(Path(spec_path), overrides)
    the_store = open_store(store, spec.root)
    study = None
    if spec.has("sweep.search"):  # its variants are the trials its study in the store has chosen
        from engine.app.study import open_study

        study = open_study(spec, the_store.root)
        spec = load_spec(Path(spec_path), overrides, trials=study.variants())
    path = record_file(spec, overrides, the_store.root)
    graph = resolve_spec(spec, registry)
    return Experiment(spec, overrides, the_store, graph, DigestCache(the_store.state_db, rehash=rehash), path,
                      read_record(spec.path, path), study)
