"""Moving an entry's files between the local disk and an fsspec filesystem: each file streamed
in chunks and hashed on the way (sha256, as the store's manifests give it), several at once.

What the bytes mean, where they go and when an entry is published is engine.core.remote_store's
business; this module only copies and reports what it copied. `guard()` (the caller's) opens a
context that turns a backend's exceptions into the caller's errors, naming the file.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Callable, ContextManager

CHUNK = 8 << 20
THREADS = 8  # files of one entry in flight at once

OnBytes = Callable[[int], None]
Guard = Callable[[], ContextManager]


def download(fs, source: str, target, expected: int, on_bytes: OnBytes | None, guard: Guard) -> tuple[int, str]:
    """Copy one remote file to `target`; (its size, its sha256). A small file is one request."""
    digest, size = hashlib.sha256(), 0
    if expected <= CHUNK:
        with guard():
            chunks = iter([fs.cat_file(source)])
        handle = None
    else:
        with guard():
            handle = fs.open(source, "rb")
        chunks = iter(lambda: _read(handle, guard), b"")
    try:
        with open(target, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
    finally:
        with contextlib.suppress(Exception):
            handle and handle.close()
    return size, digest.hexdigest()


def _read(handle, guard: Guard) -> bytes:
    with guard():
        return handle.read(CHUNK)


def upload(fs, source, target: str, on_bytes: OnBytes | None, guard: Guard) -> str:
    """Copy the local file `source` to `target` on `fs`; its sha256. An aborted copy is discarded
    (an S3 multipart upload is dropped, not completed)."""
    digest = hashlib.sha256()
    with open(source, "rb") as local:
        with guard():
            handle = fs.open(target, "wb")
            try:
                while chunk := local.read(CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
            except BaseException:
                with contextlib.suppress(Exception):
                    handle.discard() if hasattr(handle, "discard") else handle.close()
                raise
            handle.close()  # completes the upload
    return digest.hexdigest()


def each(items: list, work: Callable[[Any], None]) -> None:
    """`work(item)` for every item, THREADS at a time: an object store's delay per request, not
    bandwidth, is what a folder of small files costs. The first error stops what has not started."""
    if len(items) <= 1:
        for item in items:
            work(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=min(THREADS, len(items)))
    try:
        for future in [pool.submit(work, item) for item in items]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
