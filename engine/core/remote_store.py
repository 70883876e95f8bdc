"""A shared store on any fsspec URL (file://, s3://, gs://, ssh://): entries pushed and pulled one
by one, verified on arrival, whole or not at all on both sides.

    <url>/engine-remote.json                        {"format": 1}: an engine remote lives here
    <url>/entries/ab/abcdef.../manifest.json        published last: the entry exists when this does
    <url>/entries/ab/abcdef.../files.<upload>/...   its files, as the push named in the manifest sent them

Push: upload the entry's files under a fresh upload name that no other push uses, hashing them as
they go (a local entry that no longer matches its manifest is not sent), then publish the manifest,
which names that upload: written to a temporary name and moved into place, so a reader sees a
whole manifest or none. A push killed before publishing leaves an upload no manifest names:
invisible, and harmless to the next push. A published entry is never replaced: a push skips a key
the remote has (two pushes of one key at the same instant each publish a whole entry; the last
wins), unless the operator asks it to read the remote's copy and that copy is damaged
(`push --repair`). Pushes never delete uploads, so a reader holding a manifest always finds its files.

Pull: read the manifest, check its shape and that its payload hashes to its key, download every
file into a staging dir of the local store while hashing it, and commit through the store (one
rename) only when every size and sha256 matches; else nothing is committed and the entry is
reported as damaged on the remote.

Trust: whoever can write to the remote can publish outputs under any key; a pull checks that
what was pushed arrives unchanged, not who pushed it. So `run` reads by default and pushes only
when the operator says so (`--push`, ENGINE_REMOTE_PUSH=1), never because a spec says so.

The bytes travel through engine.core.transfers (streamed, hashed on the way, several files at
once); what a run does with a remote is engine.core.remote_run.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from engine.core.faults import fault_hook
from engine.core.payload import key_of
from engine.core.store import MANIFEST, OUT, Entry, Store, manifest_problem
from engine.core.transfers import OnBytes, download, each, upload
from engine.errors import EngineError, StoreError, UsageError

FORMAT = 1
MARKER = "engine-remote.json"
_UPLOAD = re.compile(r"files\.[0-9a-f]{16}")
_NOT_COPIED = ("files", "key", "committed_at", "upload")  # a pulled entry's manifest recomputes these
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "ssh": "paramiko", "sftp": "paramiko",
             "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs", "hf": "huggingface_hub"}
_FLAT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}  # object stores: no folders to create


class RemoteError(EngineError):
    """The remote cannot be read or written (unreachable, refused, not an engine remote)."""

    exit_code = 1


class RemoteDamaged(RemoteError):
    """An entry on the remote that does not match its manifest: refused, never committed."""


def display(url: str) -> str:
    """The URL without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_remote(url: str) -> RemoteStore:
    """The RemoteStore at `url`; a UsageError naming what to install or fix when fsspec cannot open it."""
    import fsspec

    protocol = url.split("://", 1)[0] if "://" in url else "file"
    try:
        fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    except ValueError as exc:
        raise UsageError(f"remote {display(url)}: {exc}; use a URL fsspec knows, such as file:///srv/engine, "
                         f"s3://bucket/prefix, gs://bucket/prefix or ssh://host/path") from exc
    except ImportError as exc:
        package = _PACKAGES.get(protocol)
        fix = f"`pip install {package}`" if package else "install the fsspec backend it names"
        raise UsageError(f"remote {display(url)}: the {protocol}:// backend is not installed ({exc}); {fix}") from exc
    return RemoteStore(url, fs, root.rstrip("/") or "/")


@dataclass
class RemoteStore:
    """One shared store on an fsspec URL (see the module docstring for its layout)."""

    url: str
    fs: Any  # an fsspec filesystem
    root: str
    _marked: bool = field(default=False, repr=False)

    @property
    def name(self) -> str:
        return display(self.url)

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts)) if self.root != "/" else "/" + "/".join(parts)

    def entry_dir(self, key: str) -> str:
        return self._path("entries", key[:2], key)

    @contextlib.contextmanager
    def _errors(self, what: str, writing: bool = False) -> Iterator[None]:
        """Turn a backend's own exceptions (botocore, aiohttp, paramiko, OSError) into a RemoteError
        that says where and what; a missing object stays FileNotFoundError for a reader."""
        try:
            yield
        except FileNotFoundError as exc:
            if writing:  # a missing bucket (folders are created as needed)
                raise RemoteError(f"remote {self.name}: {what} failed: {exc}; create the bucket first") from exc
            raise
        except (EngineError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - every backend has its own exception types
            hint = ("check the credentials and that this user may write there" if isinstance(exc, PermissionError)
                    else "check the URL, the network and the credentials")
            raise RemoteError(f"remote {self.name}: {what} failed: {type(exc).__name__}: {exc}; {hint}") from exc

    # -- reading ------------------------------------------------------------------------------

    def probe(self) -> bool:
        """True when an engine remote is there, False when nothing was ever pushed there; a
        RemoteError when it cannot be reached or holds a format this engine does not read."""
        try:
            with self._errors(f"reading {MARKER}"):
                raw = self.fs.cat_file(self._path(MARKER))
        except FileNotFoundError:
            return False
        try:
            found = json.loads(raw)["format"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteError(f"remote {self.name}: {MARKER} is not an engine remote marker; is this the right URL?") from exc
        if found != FORMAT:
            raise RemoteError(f"remote {self.name} has format {found}; this engine reads format {FORMAT}: "
                              f"upgrade the engine (`pip install -U engine`)")
        return True

    def keys(self) -> list[str]:
        """Every published entry's key."""
        with self._errors("listing entries"):
            found = self.fs.glob(self._path("entries", "*", "*", MANIFEST))
        return sorted(path.rstrip("/").split("/")[-2] for path in found)

    def manifest(self, key: str) -> dict | None:
        """The published manifest of `key`, None when the remote has no such entry; RemoteDamaged
        when it is there but unreadable or malformed."""
        try:
            with self._errors(f"reading the manifest of {key[:12]}"):
                raw = self.fs.cat_file(f"{self.entry_dir(key)}/{MANIFEST}")
        except FileNotFoundError:
            return None
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            raise RemoteDamaged(self._damaged(key, None, "its manifest is not valid JSON")) from exc
        problem = manifest_problem(manifest)
        if not problem and manifest["key"] != key:
            problem = "its manifest names another key"
        if not problem and key_of(manifest["payload"]) != key:
            problem = "its manifest's payload does not hash to its key"
        if not problem and not _UPLOAD.fullmatch(str(manifest.get("upload"))):
            problem = "its manifest names no upload"
        if problem:
            raise RemoteDamaged(self._damaged(key, manifest if isinstance(manifest, dict) else None, problem))
        return manifest

    def pull(self, store: Store, key: str, on_bytes: OnBytes | None = None, manifest: dict | None = None) -> Entry | None:
        """Download `key` into `store`, verified, committed atomically; None when the remote lacks
        it. The caller holds the key's store lock (`Store.lock`); `manifest` saves reading it again."""
        try:
            manifest = manifest or self.manifest(key)
            if manifest is None:
                return None
            staging = store.new_staging(key)
            try:
                each(sorted(manifest["files"].items()), lambda item: self._fetch(key, manifest, item, staging, on_bytes))
                return store.commit(staging, key, {k: v for k, v in manifest.items() if k not in _NOT_COPIED})
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        except RemoteDamaged as exc:
            raise RemoteDamaged(f"{exc}. It was not pulled; the local store does not have it. From a machine that has "
                                f"it, `engine cache push {self.name} --repair` replaces it; or let `engine run` build "
                                f"it here") from None

    def problem(self, key: str) -> str | None:
        """What is wrong with the remote's copy of `key` (every file read and hashed), or None when
        it is whole or absent."""
        try:
            manifest = self.manifest(key)
            if manifest is not None:
                each(sorted(manifest["files"].items()), lambda item: self._fetch(key, manifest, item, None, None))
        except RemoteDamaged as exc:
            return str(exc)
        return None

    def _fetch(self, key: str, manifest: dict, item: tuple[str, dict], staging, on_bytes: OnBytes | None) -> None:
        """Download one file of an entry into `staging` (nowhere when None) and check it against the manifest."""
        rel, info = item
        target = staging / OUT / rel if staging is not None else os.devnull
        if staging is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            size, digest = download(self.fs, f"{self.entry_dir(key)}/{manifest['upload']}/{rel}", target, info["size"],
                                    on_bytes, lambda: self._errors(f"downloading {rel}"))
        except FileNotFoundError as exc:
            raise RemoteDamaged(self._damaged(key, manifest, f"{rel} is missing")) from exc
        if size != info["size"]:
            raise RemoteDamaged(self._damaged(key, manifest, f"{rel} has {size} bytes, its manifest says {info['size']}"))
        if digest != info["sha256"]:
            raise RemoteDamaged(self._damaged(key, manifest, f"{rel}: content differs from its manifest (sha256)"))

    def _damaged(self, key: str, manifest: dict | None, problem: str) -> str:
        what = f"{manifest.get('spec')}/{manifest.get('node')}" if manifest else "an entry"
        return f"the remote's copy of {what} ({key[:12]}) is damaged: {problem}"

    # -- writing ------------------------------------------------------------------------------

    def push(self, entry: Entry, on_bytes: OnBytes | None = None, replace: bool = False) -> int | None:
        """Upload one local entry; the bytes sent, or None when the remote has this key already
        (a published entry is never replaced, unless `replace`: the caller found it damaged, see
        `problem`). The caller holds the entry (`Store.hold`)."""
        key = entry.key
        if not replace and self.has(key):
            return None
        self._mark()
        upload = f"files.{os.urandom(8).hex()}"
        base = f"{self.entry_dir(key)}/{upload}"

        def send(item: tuple[str, dict]) -> None:
            rel, info = item
            if self._upload(entry.out / rel, f"{base}/{rel}", rel, on_bytes) != info["sha256"]:
                raise StoreError(f"local entry {key[:12]} ({entry.manifest.get('spec')}/{entry.manifest.get('node')}) "
                                 f"is damaged: {rel} differs from its manifest; not pushed. `engine cache verify` "
                                 f"moves it aside and `engine run` rebuilds it")

        try:
            each(sorted(entry.manifest["files"].items()), send)
        except BaseException:
            with contextlib.suppress(Exception):  # tidy our own upload; one left by a killed push is invisible anyway
                self.fs.rm(base, recursive=True)
            raise
        fault_hook("before-publish", str(entry.manifest.get("node")))
        if not replace and self.has(key):  # another push published it meanwhile: keep theirs
            return None
        body = json.dumps({**entry.manifest, "upload": upload}, indent=1, sort_keys=True).encode()
        self._publish(f"{self.entry_dir(key)}/{MANIFEST}", body)
        return sum(info["size"] for info in entry.manifest["files"].values())

    def has(self, key: str) -> bool:
        """Whether the remote has a published entry for `key` (an unreadable manifest is none)."""
        try:
            return self.manifest(key) is not None
        except RemoteDamaged:
            return False  # an unreadable manifest is no entry: a good push replaces it

    def _upload(self, source, target: str, rel: str, on_bytes: OnBytes | None) -> str:
        self._folder(target.rsplit("/", 1)[0])
        return upload(self.fs, source, target, on_bytes, lambda: self._errors(f"uploading {rel}", writing=True))

    def _publish(self, path: str, body: bytes) -> None:
        """Write a small file whole or not at all: a temporary name, then a move."""
        self._folder(path.rsplit("/", 1)[0])
        temporary = f"{path}.{os.urandom(6).hex()}.tmp"
        with self._errors(f"writing {path.rsplit('/', 1)[-1]}", writing=True):
            self.fs.pipe_file(temporary, body)
            self.fs.mv(temporary, path)

    def _mark(self) -> None:
        """Write the marker on the first push to an empty remote."""
        if not self._marked and not self.probe():
            self._publish(self._path(MARKER), json.dumps({"format": FORMAT}).encode())
        self._marked = True

    def _folder(self, path: str) -> None:
        if not set(_protocols(self.fs)) & _FLAT:
            with self._errors(f"creating {path}"):
                self.fs.makedirs(path, exist_ok=True)


def _protocols(fs) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
