"""One side of a diff or one run of a compare: the spec, what its stages read, and its record's
standing, all as of the same place (a git revision, or the working tree).

    source ──load──► spec ──resolve──► graph ──► input digests (from git blobs at a revision,
                                                  from the files on disk in the working tree)
    record (from the same revision; a --set run's own record in the store)
        + graph + input digests ──► per stage: current / out of date / not run

A record's numbers are shown as the result of a spec only where the stage is current; where the
record is stale but the store holds the stage's output for today's key, the numbers come from
that output (the same key made it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.digests import DigestCache
from engine.core.graph import Graph
from engine.core.status import CURRENT, NodeStatus
from engine.core.store import Store
from engine.errors import EngineError, SpecError
from engine.review.gitfiles import BlobDigests
from engine.review.sources import SpecSource, repo_top
from engine.spec import Spec


@dataclass
class Side:
    source: SpecSource
    spec: Spec
    graph: Graph
    inputs: dict[str, dict[str, str]] | None  # {node: {label: digest}}; None where unknown (see notes)
    record: dict | None
    statuses: dict[str, NodeStatus] = field(default_factory=dict)  # empty where inputs are unknown
    store: Store | None = None
    notes: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)  # --set values of this side
    _evidence: dict | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return self.source.label

    def evidence(self) -> dict[str, tuple[str, dict]]:
        """{node: (state, metrics)} for the stages of the spec and those the record has: the state
        is current, out of date, not run, not in spec (a record's stage the spec no longer has),
        or unknown (inputs not read); where the record is stale but the store holds today's
        output, that output's metrics, and current."""
        if self._evidence is None:
            recorded = (self.record or {}).get("nodes", {})
            self._evidence = {}
            for node in [*self.graph.order, *sorted(set(recorded) - set(self.graph.nodes))]:
                status = self.statuses.get(node)
                metrics = recorded.get(node, {}).get("metrics", {})
                state = status.state if status else "unknown" if self.inputs is None else "not in spec"
                if status and status.state != CURRENT and status.in_store:
                    entry, _ = self.store.check(status.key)
                    if entry is not None:
                        metrics, state = entry.manifest.get("result", {}).get("metrics", {}), CURRENT
                self._evidence[node] = (state, {k: v for k, v in metrics.items()
                                                if isinstance(v, (int, float)) and not isinstance(v, bool)})
        return self._evidence

    def standing(self) -> str:
        """One line: `current`, `no record`, or which stages are out of date / not run."""
        from engine.core.status import summary

        if self.inputs is None:
            return "unknown"
        if self.record is None:
            return "no record"
        return summary(self.statuses)


class Context:
    """What every side of one command shares: the store (opened by the caller, engine.app) and
    the digest caches."""

    def __init__(self, store: Store):
        self.store = store
        self.digests = DigestCache(self.store.state_db)
        self.blobs = BlobDigests(self.store.state_db)

    def save(self) -> None:
        """Keep what was hashed for the next command, as `engine plan` does; a store that cannot
        be written only costs a rehash next time."""
        from engine.errors import StoreError

        try:
            self.store.prepare()
            self.digests.save()
            self.blobs.save()
        except (StoreError, OSError):
            pass


def open_side(source: SpecSource, overrides: list[str], name: str | None, context: Context) -> Side:
    """Load, resolve and weigh one side. A spec that does not load is an error naming the side;
    inputs that cannot be read (a data file not there) leave the side's inputs and record
    standing unknown, with a note saying why."""
    from engine.pipeline import resolve_spec as resolve
    from engine.core.status import record_status
    from engine.spec import load_spec

    where = f"side {name} ({source.label})" if name else source.label
    try:
        spec = load_spec(source.path, overrides, shown_as=source.label if source.rev else None, read=source.reader())
    except SpecError as exc:
        raise SpecError(exc.problems, f"{where} does not load") from None
    record = None if source.read is not None else read_record(source, spec, overrides, context.store)
    trials = searched_trials(record)
    if spec.has("sweep.search") and trials:  # a search's variants: the trials its record holds
        spec = load_spec(source.path, overrides, shown_as=source.label if source.rev else None, read=source.reader(),
                         trials=trials)
    graph = resolve(spec, read=source.reader())
    side = Side(source, spec, graph, None, record, store=context.store, overrides=list(overrides))
    if source.read is not None:  # git's diff driver: the revision is unknown
        return side
    try:
        if source.rev:
            from engine.review.gitfiles import GitTree
            from engine.review.inputs import RevisionFiles, revision_inputs

            files = RevisionFiles(GitTree(repo_top(source.path.parent), source.rev, context.blobs), context.digests)
            side.inputs = revision_inputs(graph, files)
            side.notes = files.notes
        else:
            from engine.review.inputs import working_tree_inputs

            side.inputs = working_tree_inputs(graph, context.digests)
    except EngineError as exc:
        text = str(exc).replace("\n", " ")
        side.notes.append(f"its input files cannot be read, so what reruns and whether its record is current are "
                          f"unknown: {text}")
        return side
    side.statuses = record_status(graph, context.store, context.digests, record, side.inputs)
    return side


def searched_trials(record: dict | None) -> list[tuple[str, dict]]:
    """(label, values) of the complete trials of a sweep.search's record (its variants), else []."""
    done = ((record or {}).get("sweep") or {}).get("search", {}).get("done", [])
    return [(t["name"], t["params"]) for t in done if t.get("state") == "complete" and "same_as" not in t]


def read_record(source: SpecSource, spec: Spec, overrides: list[str], store: Store) -> dict | None:
    """The record of this side: a --set run's own record from the store, else the record beside
    the spec, read from the same revision as the spec. None if there is none."""
    from engine.core.record import record_file, record_path, record_problem

    if overrides:
        raw = _read(lambda p: p.read_bytes(), record_file(spec, overrides, store.root))
    else:  # beside the spec as the source names it (read through git at a revision)
        raw = _read(source.reader() or (lambda p: p.read_bytes()), record_path(source.path))
    try:
        record = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return None if record is None or record_problem(record) else record


def _read(reader, path: Path) -> bytes | None:
    try:
        return reader(path)
    except OSError:
        return None
