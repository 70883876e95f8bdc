"""What `engine run` does with a remote: pull a missing entry before building it, and push what it
built when the operator allows it.

Which remote: ENGINE_REMOTE (a URL, or `none` to use none this time), else the spec's
`runtime.remote` (never hashed: where outputs are shared, not what they are). Pushing is the
operator's choice alone, `--push` or ENGINE_REMOTE_PUSH=1: a spec from a pull request can make its
CI read the team's remote, never write to it.

Names: a `RemoteStore` (engine.core.remote_store) is the store at a URL, called `remote`; the
`RemoteSettings` say which one a run uses and whether it pushes (plain data: they travel to a Ray
worker, which opens its own link); a `RunLink` is a run's open use of it, called `link`, the
runner's `RemoteLink`.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

from engine.core.remote_store import RemoteDamaged, RemoteError, RemoteStore, open_remote
from engine.core.runner import Event, Reporter
from engine.core.store import Entry, Store
from engine.errors import StoreError, UsageError
from engine.units import size_text

_YES = {"1", "true", "yes", "on"}
BAR_BYTES = 16 << 20  # a smaller transfer takes well under a second: no bar


def remote_url(spec_remote: str | None, spec_root: Path) -> str | None:
    """The remote a run uses: ENGINE_REMOTE, else the spec's runtime.remote (a plain path in the
    spec is relative to the spec's folder, as every path in a spec is); None for none."""
    env = os.environ.get("ENGINE_REMOTE", "").strip()
    if env.lower() in ("none", "off"):
        return None
    if env:
        return env
    if spec_remote:
        return spec_remote if "://" in spec_remote else str((spec_root / spec_remote).resolve())
    return None


class RemoteSettings(NamedTuple):
    """Which remote a run uses (None: none) and whether it may push there."""

    url: str | None = None
    push: bool = False


def remote_settings(spec_remote: str | None, spec_root: Path, push_flag: bool = False) -> RemoteSettings:
    """The URL (from `remote_url`) and whether to push (the operator's --push or ENGINE_REMOTE_PUSH)."""
    url = remote_url(spec_remote, spec_root)
    push = push_flag or os.environ.get("ENGINE_REMOTE_PUSH", "").strip().lower() in _YES
    if push and url is None:
        raise UsageError("--push (or ENGINE_REMOTE_PUSH=1) needs a remote: set runtime.remote in the spec or "
                         "ENGINE_REMOTE=URL")
    return RemoteSettings(url, push)


class RunLink:
    """A run's use of one remote. A remote that cannot be reached at the start is an error (a run
    that silently rebuilds hours of work is worse); one that fails later is a warning, the stage
    is built here, and the remote is left alone for the rest of the run."""

    def __init__(self, remote: RemoteStore, push: bool):
        self.remote, self.push = remote, push
        self.down: str | None = None
        self.pulled: list[str] = []
        self.pushed: list[str] = []
        self.kept: list[str] = []  # built here, but the remote had the key already
        self.unpushed: list[str] = []
        try:
            self.empty = not remote.probe()
        except RemoteError as exc:  # stops the run before anything is built
            raise RemoteError(f"{exc}. To run without the remote: ENGINE_REMOTE=none") from exc

    @classmethod
    def open(cls, settings: RemoteSettings) -> RunLink | None:
        """The link the settings ask for (probing the remote), or None when they name no remote."""
        return cls(open_remote(settings.url), settings.push) if settings.url else None

    def fetch(self, store: Store, key: str, name: str, reporter: Reporter) -> Entry | None:
        """The remote's entry for `key`, pulled and committed (the caller holds the key's lock), or None."""
        if self.down or self.empty:
            return None
        try:
            manifest = self.remote.manifest(key)
            if manifest is None:
                return None
            size = sum(info["size"] for info in manifest["files"].values())
            started = time.time()
            bar = _bar(reporter, name, size, "pulling from the remote (MB)")
            try:
                entry = self.remote.pull(store, key, lambda n: bar.advance(n / 1e6), manifest)
            finally:
                bar.close()
        except RemoteDamaged as exc:
            reporter.event(Event("log", name, f"{exc}; building it here"))
            return None
        except RemoteError as exc:
            self.down = str(exc)
            reporter.event(Event("log", name, f"warning: {exc}; building here, and not using the remote for the rest "
                                              f"of this run"))
            return None
        self.pulled.append(name)
        reporter.event(Event("cached", name, f"pulled from {self.remote.name} ({size_text(size)} in "
                                             f"{time.time() - started:.1f}s)"))
        return entry

    def publish(self, store: Store, entry: Entry, name: str, reporter: Reporter) -> None:
        """Push an entry this run built, when pushing is allowed; a failure is a warning."""
        if not self.push:
            return
        if self.down:
            self.unpushed.append(name)
            return
        size = sum(info["size"] for info in entry.manifest["files"].values())
        fd = store.hold(entry.key)
        bar = _bar(reporter, name, size, "pushing to the remote (MB)")
        try:
            sent = self.remote.push(entry, lambda n: bar.advance(n / 1e6))
        except (RemoteError, StoreError) as exc:
            self.unpushed.append(name)
            if isinstance(exc, RemoteError):
                self.down = str(exc)
            reporter.event(Event("log", name, f"warning: not pushed: {exc}"))
            return
        finally:
            bar.close()
            store.release(fd)
        (self.pushed if sent is not None else self.kept).append(name)
        reporter.event(Event("log", name, f"pushed to {self.remote.name} ({size_text(size)})" if sent is not None
                                          else "the remote has this key already; kept (a published entry is never replaced)"))

    def summary(self) -> str | None:
        """One line for the end of the run, or None when the remote took no part."""
        parts = []
        if self.pulled:
            parts.append(f"pulled {len(self.pulled)} ({', '.join(self.pulled)})")
        if self.pushed:
            parts.append(f"pushed {len(self.pushed)}")
        if self.kept:
            parts.append(f"{len(self.kept)} already there")
        if self.unpushed:
            parts.append(f"NOT pushed {len(self.unpushed)} ({', '.join(self.unpushed)}): "
                         f"`engine cache push {self.remote.name}` sends them")
        if self.push and not parts:
            parts.append("nothing new to push")
        if self.empty and not self.push:
            parts.append("it holds no entries yet")
        return f"remote {self.remote.name}: " + "; ".join(parts) if parts else None


def _bar(reporter: Reporter, name: str, size: int, description: str):
    if size < BAR_BYTES:
        from engine.core.context import NoBar

        return NoBar()
    return reporter.progress(name, size / 1e6, description)
