"""Running a plan: stages in order, each into a staging dir committed to the store whole.

The runner sends events (started, cached, done, failed, skipped) to a reporter and prints
nothing itself. A failure caches nothing and skips only what depends on it: independent branches
(generate when evaluate failed) still run. Ctrl-C leaves no partial entry.

By default stages run one at a time in this process. An `Executor` (engine/executors/, given by
the caller: core knows none) builds every stage whose upstream is ready at once, elsewhere, each
through `build_step` as here; the store's per-key locks and atomic commits keep the
one-build-per-key guarantee, and this process still decides what runs, checks upstream entries,
and handles cached steps, skips and failures the same way.
"""
from __future__ import annotations

import errno
import shutil
import time
import traceback
from dataclasses import dataclass, field
from typing import Protocol

from engine.core.context import ProgressBar, StageContext
from engine.core.digests import DigestCache
from engine.core.faults import fault_hook
from engine.core.graph import Graph
from engine.core.payload import key_of
from engine.core.plan import CACHED, Step, compute_payload, input_digests
from engine.core.reasons import render_all
from engine.core.store import Entry, Store
from engine.errors import EngineError, StageError


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
    failed: list[str] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # node -> the failed upstream it waited on
    ran: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class RemoteLink(Protocol):
    """A run's link to a shared store (engine.core.remote_run.RunLink): pulls a missing entry,
    pushes a built one."""

    def fetch(self, store: Store, key: str, name: str, reporter: Reporter) -> Entry | None: ...

    def publish(self, store: Store, entry: Entry, name: str, reporter: Reporter) -> None: ...


class Executor(Protocol):
    """Builds stages elsewhere, several at once (engine.executors.ray): `submit` starts one
    step's build and returns a handle; `wait` blocks until one of `handles` ends and returns it
    with the key it committed and the events it sent; `cancel` stops them all (Ctrl-C)."""

    def submit(self, step: Step, upstream: dict[str, str]) -> object: ...

    def wait(self, handles: list) -> tuple[object, dict]: ...

    def cancel(self, handles: list) -> None: ...


def run_plan(graph: Graph, steps: list[Step], store: Store, digests: DigestCache, reporter: Reporter,
             options: dict | None = None, link: RemoteLink | None = None, executor: Executor | None = None) -> RunResult:
    """Execute the RUN steps of a plan; see module docstring. With a `link`, a stage whose entry
    the remote has is pulled instead of built, and what is built is offered to it. With an
    `executor`, every stage whose upstream is ready is built at once, through it."""
    run = _Run(graph, steps, store, digests, reporter, options or {}, link)
    try:
        if executor is None:
            for step in steps:
                run.step(step)
        else:
            _run_through(run, steps, executor)
    finally:
        run.release()
    digests.save()
    return run.result


def _run_through(run: "_Run", steps: list[Step], executor: Executor) -> None:
    """Submit each step as soon as every upstream step has ended; handle ends as they come.
    Cached steps, skips and failures are handled here exactly as in the one-at-a-time loop."""
    waiting, running = list(steps), {}
    try:
        while waiting or running:
            unfinished = {s.node.name for s in waiting} | {s.node.name for s in running.values()}
            for step in [s for s in waiting if not set(s.node.deps) & unfinished]:
                waiting.remove(step)
                if not run.ready(step):
                    continue
                try:
                    run.prepare(step)
                    run.reporter.event(Event("started", step.node.name, render_all(step.reasons)))
                    running[executor.submit(step, {d: run.result.entries[d].key for d in step.node.deps})] = step
                except Exception as exc:  # noqa: BLE001 - reported, never cached
                    run.fail(step, exc)
            if not running:
                continue
            handle, outcome = executor.wait(list(running))
            step = running.pop(handle)
            for kind, message, seconds in outcome.get("events", []):
                if kind != "started":
                    run.reporter.event(Event(kind, step.node.name, message, seconds))
            if outcome.get("error"):
                run.fail(step, StageError(outcome["error"]))
                continue
            entry, problem = run.store.check(outcome["key"], run.graph.digests_read(step.node.name))
            if entry is None:
                run.fail(step, StageError(f"the executor built {step.node.name} but its entry is not in this store "
                                          f"({problem or 'missing'}); with a cluster, set runtime.remote so entries "
                                          "travel between machines"))
                continue
            run.finish(step, entry, outcome.get("fresh", True))
    except BaseException:
        executor.cancel(list(running))
        raise


class _Run:
    """The state of one run: entries built or found, and the `.use` locks that keep `cache gc`
    away from every entry this run reads or builds until it ends."""

    def __init__(self, graph: Graph, steps: list[Step], store: Store, digests: DigestCache, reporter: Reporter,
                 options: dict, link: RemoteLink | None = None):
        self.graph, self.store, self.digests, self.reporter, self.options = graph, store, digests, reporter, options
        self.link = link
        self.result = RunResult()
        self.keys = {s.node.name: s.key for s in steps if s.key}
        self.by_name = {s.node.name: s for s in steps}
        self.sound: set[str] = set()  # upstream keys whose files this process rehashed
        self.held: list[int | None] = []

    def step(self, step: Step) -> None:
        if not self.ready(step):
            return
        try:
            self.prepare(step)
            self.build(step)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - any stage failure is reported, never cached
            self.fail(step, exc)
            return
        self.digests.save()

    def ready(self, step: Step) -> bool:
        """False when the step needs no building: cached (used as it is) or skipped (an upstream failed)."""
        name, result = step.node.name, self.result
        if step.action == CACHED and step.entry is not None:
            self.use(name, step.entry)
            self.store.touch(step.entry)
            self.reporter.event(Event("cached", name))
            return False
        blocked = [d for d in step.node.deps if d in result.failed or d in result.skipped]
        if blocked:  # a failure skips what depends on it, and nothing else
            cause = sorted({result.skipped.get(d, d) for d in blocked})
            result.skipped[name] = cause[0]
            self.reporter.event(Event("skipped", name, f"because {' and '.join(cause)} failed"))
            return False
        return True

    def prepare(self, step: Step) -> None:
        """Upstream entries checked sound, and the step's key known (it may need an upstream output)."""
        for dep in step.node.deps:
            self.ensure_sound(dep)
        if step.key is None:
            step.payload = compute_payload(self.graph, step.node, self.keys, self.result.entries, self.digests)
            step.key = self.keys[step.node.name] = key_of(step.payload)

    def fail(self, step: Step, exc: BaseException) -> None:
        self.result.failed.append(step.node.name)
        self.result.errors[step.node.name] = exc
        detail = str(exc) if isinstance(exc, EngineError) else "".join(traceback.format_exception_only(exc)).strip()
        self.reporter.event(Event("failed", step.node.name, detail))

    def use(self, name: str, entry: Entry) -> None:
        self.held.append(self.store.hold(entry.key))
        self.result.entries[name] = entry

    def build(self, step: Step) -> None:
        entry, fresh = build_step(step, self.graph, self.store, self.digests, self.reporter, self.options,
                                  self.result.entries, self.link)
        self.finish(step, entry, fresh)

    def finish(self, step: Step, entry: Entry, fresh: bool) -> None:
        """A step's entry is built (or was found built meanwhile): use it, and offer it to the remote."""
        self.use(step.node.name, entry)
        self.sound.add(entry.key)  # built here, or pulled and verified on arrival
        if fresh:
            self.result.ran.append(step.node.name)
            if self.link is not None:
                self.link.publish(self.store, entry, step.node.name, self.reporter)

    def ensure_sound(self, name: str) -> None:
        """Rehash an upstream entry before a stage loads it; a damaged one is moved aside (under its
        lock, after checking again) and rebuilt, or taken as another run rebuilt it meanwhile."""
        entry = self.result.entries[name]
        if entry.key in self.sound:
            return
        verified = self.store.verify_or_quarantine(entry, self.graph.digests_read(name))
        if verified.entry is not None:
            self.result.entries[name] = verified.entry  # sound, or rebuilt meanwhile by another run
        else:
            if verified.problems:
                self.reporter.event(Event("log", name, f"cached output is damaged ({'; '.join(verified.problems)}); "
                                                       f"moved to {verified.moved_to}; rebuilding"))
            for dep in self.by_name[name].node.deps:
                self.ensure_sound(dep)
            self.by_name[name].entry = None
            self.build(self.by_name[name])
        self.sound.add(self.result.entries[name].key)

    def release(self) -> None:
        for fd in self.held:
            self.store.release(fd)
        self.held = []


def build_step(step: Step, graph: Graph, store: Store, digests: DigestCache, reporter: Reporter, options: dict,
               upstream: dict[str, Entry], link: RemoteLink | None = None) -> tuple[Entry, bool]:
    """Build one step (its key known, its `upstream` entries by node name) into the store, under the
    key's lock: (the entry, True) when built here; (an entry, False) when another run built it
    meanwhile or `link` pulled it. An executor's worker calls this too, so a step is built one way."""
    name, key = step.node.name, step.key
    assert key is not None and step.payload is not None
    waiting = lambda: reporter.event(Event("log", name, f"waiting for another run that is building {name} (key {key[:12]})"))  # noqa: E731
    with store.lock(key, on_wait=waiting):
        entry, damaged = store.check(key, graph.digests_read(name))  # another process may have built it meanwhile
        if entry is not None and not step.force:
            reporter.event(Event("cached", name, "built meanwhile by another run"))
            return entry, False
        if damaged:
            aside = store.quarantine(key, damaged)
            reporter.event(Event("log", name, f"cached output was damaged ({damaged}); moved to {aside}"))
        if link is not None and not step.force:
            pulled = link.fetch(store, key, name, reporter)
            if pulled is not None:
                return pulled, False
        staging = store.new_staging(key)
        try:
            reporter.event(Event("started", name, render_all(step.reasons)))
            started = time.time()
            ctx = StageContext(
                name=name, params=step.node.given,  # what the stage reads: its key fields and its IGNORES
                inputs={role: upstream[dep].out for role, dep in step.node.inputs.items()},
                out=staging / "out", work=store.work_dir(key), seed=graph.spec_of(step.node).get("seed"),
                spec_root=graph.spec_of(step.node).root, runtime=graph.spec.get("runtime"), options=options,
                log=lambda message: reporter.event(Event("log", name, message)),
                progress=lambda total, description: reporter.progress(name, total, description),
            )
            try:
                stage_result = graph.registry[step.node.kind].run(ctx) or {}
                fault_hook("before-commit", name)
                _check_inputs_unchanged(graph, step, digests)
                wall = time.time() - started
                entry = store.commit(staging, key, {
                    "node": name, "spec": graph.spec.name, "payload": step.payload,
                    "result": stage_result, "wall_s": wall,
                })
            except OSError as exc:
                raise _disk_full(exc, staging, store, key) or exc
            except Exception as exc:
                if "No space left on device" in str(exc):
                    raise _disk_full(exc, staging, store, key) from exc
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(store.work_dir(key), ignore_errors=True)
        reporter.event(Event("done", name, _headline(stage_result), wall))
        return entry, True


def _check_inputs_unchanged(graph: Graph, step: Step, digests: DigestCache) -> None:
    """Identify the node's input files again before committing: an input replaced while the stage
    read it would otherwise be stored under the old content's key (a stale hit later)."""
    now = input_digests(graph, step.node, digests)
    before = step.payload["inputs"]
    changed = sorted(label for label in set(now) | set(before) if now.get(label) != before.get(label))
    if changed:
        raise StageError(f"input {', '.join(changed)} changed while {step.node.name} was reading it; nothing was "
                         f"committed. Run again once the file is no longer being written.")


def _disk_full(exc: BaseException, staging, store: Store, key: str) -> StageError | None:
    """Where, and what the stage had written (outputs, and checkpoints in its work dir): the least it needs."""
    if not (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) and "No space left on device" not in str(exc):
        return None
    written, work = (sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) if d.exists() else 0
                     for d in (staging, store.work_dir(key)))
    free = shutil.disk_usage(store.root).free
    during = " while saving a checkpoint" if "saving a checkpoint" in str(exc) else ""
    kept = f" and {work / 1e6:.1f} MB of checkpoints in {store.work_dir(key)}" if work else ""
    return StageError(f"disk full{during}: the stage had written {written / 1e6:.1f} MB of outputs{kept} into the store at "
                      f"{store.root} when the disk ran out ({free / 1e6:.1f} MB free now); it needs more than "
                      f"{(written + work) / 1e6:.1f} MB free there. Free space (`engine cache gc`), or point the store at a "
                      f"bigger disk with --store DIR / ENGINE_STORE; nothing was committed.")


def _headline(result: dict) -> str:
    metrics = result.get("metrics", {})
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in list(metrics.items())[:4])
