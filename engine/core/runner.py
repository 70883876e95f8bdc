"""Running a plan: stages in order, each into a staging dir committed to the store whole.

The runner sends events (started, cached, done, failed, skipped) to a reporter and prints
nothing itself. A failure caches nothing and skips everything downstream of it; Ctrl-C leaves no
partial entry.
"""
from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass, field
from typing import Protocol

from engine.core.context import ProgressBar, StageContext
from engine.core.digests import DigestCache
from engine.core.graph import Graph
from engine.core.payload import key_of
from engine.core.plan import CACHED, Step, compute_payload
from engine.core.store import Entry, Store
from engine.errors import EngineError
from engine.stages import STAGES


@dataclass(frozen=True)
class Event:
    kind: str  # started | cached | done | failed | skipped | log
    node: str
    message: str = ""
    seconds: float = 0.0


class Reporter(Protocol):
    def event(self, event: Event) -> None: ...

    def progress(self, node: str, total: float | None, description: str) -> ProgressBar: ...


@dataclass
class RunResult:
    entries: dict[str, Entry] = field(default_factory=dict)
    failed: str | None = None
    error: BaseException | None = None
    skipped: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed is None


def run_plan(graph: Graph, steps: list[Step], store: Store, digests: DigestCache, reporter: Reporter,
             options: dict | None = None) -> RunResult:
    """Execute the RUN steps of a plan; see module docstring."""
    result = RunResult()
    keys = {s.node.name: s.key for s in steps if s.key}
    for step in steps:
        name = step.node.name
        if result.failed:
            result.skipped.append(name)
            reporter.event(Event("skipped", name, f"because {result.failed} failed"))
            continue
        if step.action == CACHED and step.entry is not None:
            result.entries[name] = step.entry
            store.touch(step.entry)
            reporter.event(Event("cached", name))
            continue
        if step.key is None:  # its key needed an upstream output that now exists
            payload = compute_payload(graph, step.node, keys, result.entries, digests)
            step.payload, step.key = payload, key_of(payload)
            keys[name] = step.key
        try:
            entry, fresh = _build(step, graph, store, reporter, options or {}, result.entries)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - any stage failure is reported, never cached
            result.failed, result.error = name, exc
            detail = str(exc) if isinstance(exc, EngineError) else "".join(traceback.format_exception_only(exc)).strip()
            reporter.event(Event("failed", name, detail))
            continue
        result.entries[name] = entry
        if fresh:
            result.ran.append(name)
        digests.save()
    digests.save()
    return result


def _build(step: Step, graph: Graph, store: Store, reporter: Reporter, options: dict,
           upstream: dict[str, Entry]) -> tuple[Entry, bool]:
    name, key = step.node.name, step.key
    assert key is not None and step.payload is not None
    with store.lock(key):
        entry, damaged = store.check(key)  # another process may have built it meanwhile
        if entry is not None and not step.force:
            reporter.event(Event("cached", name, "built meanwhile by another run"))
            return entry, False
        if damaged:
            aside = store.quarantine(key, damaged)
            reporter.event(Event("log", name, f"cached output was damaged ({damaged}); moved to {aside}"))
        staging = store.new_staging(key)
        try:
            reporter.event(Event("started", name, "; ".join(step.reasons)))
            started = time.time()
            ctx = StageContext(
                name=name, params=step.node.params,
                inputs={dep: upstream[dep].out for dep in step.node.deps},
                out=staging / "out", work=store.work_dir(key), seed=graph.spec.get("seed"),
                spec_root=graph.spec.root, runtime=graph.spec.get("runtime"), options=options,
                log=lambda message: reporter.event(Event("log", name, message)),
                progress=lambda total, description: reporter.progress(name, total, description),
            )
            stage_result = STAGES[step.node.kind].run(ctx) or {}
            wall = time.time() - started
            entry = store.commit(staging, key, {
                "node": name, "spec": graph.spec.name, "payload": step.payload,
                "result": stage_result, "wall_s": wall,
            })
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(store.work_dir(key), ignore_errors=True)
        reporter.event(Event("done", name, _headline(stage_result), wall))
        return entry, True


def _headline(result: dict) -> str:
    metrics = result.get("metrics", {})
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in list(metrics.items())[:4])
