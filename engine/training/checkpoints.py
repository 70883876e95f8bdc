"""Training checkpoints that are resumed from only when complete, and SIGTERM that ends with one.

A checkpoint is complete when the manifest written into it last (MANIFEST) lists every other file
with its size and sha256, and all match; a checkpoint without `trainer_state.json` never is. On
resume the newest complete one is used; newer incomplete ones are removed, each with a log line.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

MANIFEST = "ENGINE_COMPLETE"  # in each checkpoint, written last: every other file's size and sha256
# What torch.save's archive writer says of a short write, as on a full disk, in place of the OSError:
# "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534" (torch 2.x), or
# "PytorchStreamWriter failed writing file data/0: file write failed".
SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed writing file")
# In each checkpoint, listed in its manifest: the loss summary so far, so that a resumed run reports
# the numbers of an uninterrupted one (the Trainer averages only the steps of its own call).
LOSSES = "engine_losses.json"


def write_manifest(folder: Path) -> None:
    """List every file of a checkpoint the Trainer has finished saving: written last, atomically."""
    files = {name: _describe(folder / name) for name in _checkpoint_files(folder)}
    temporary = folder / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps({"files": files}, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, folder / MANIFEST)


def disk_full_while_saving(exc: BaseException, work: Path) -> OSError | None:
    """torch.save's short-write error (a checkpoint saved on a full disk) as the OSError it stands
    for, so the runner reports it as it does any full disk; None for any other error."""
    text = str(exc)
    if not (isinstance(exc, RuntimeError) and any(words in text for words in SHORT_WRITE)):
        return None
    said = (text.strip().splitlines() or [""])[0][:200]
    return OSError(errno.ENOSPC, f"No space left on device while saving a checkpoint in {work} (torch: {said})")


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint cannot be resumed from, or None when every file matches its manifest."""
    if not (folder / "trainer_state.json").is_file():
        return "no trainer_state.json"
    try:
        listed = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return "no manifest (it was not finished saving)"
    except (OSError, ValueError, KeyError, TypeError):
        return "its manifest is unreadable"
    present = set(_checkpoint_files(folder))
    if missing := sorted(set(listed) - present):
        return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    if extra := sorted(present - set(listed)):
        return f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not in its manifest"
    for name, want in sorted(listed.items()):
        size = (folder / name).stat().st_size
        if size != want["size"]:
            return f"{name} has {size} bytes, its manifest says {want['size']}"
        if _describe(folder / name)["sha256"] != want["sha256"]:
            return f"{name} does not match its sha256 digest"
    return None


def resumable_checkpoint(folder: Path, log) -> Path | None:
    """The newest complete checkpoint. Newer incomplete ones are removed, each with a log line
    saying why: the Trainer would save over them, and sorts checkpoints by mtime when rotating."""
    numbered = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.removeprefix("checkpoint-").isdigit()]
    skipped = False
    for candidate in sorted(numbered, key=lambda p: int(p.name.removeprefix("checkpoint-")), reverse=True):
        problem = checkpoint_problem(candidate)
        if problem is None:
            return candidate
        log(f"skipped {candidate.name}: {problem}; removed it")
        shutil.rmtree(candidate)
        skipped = True
    if skipped:
        log("no complete checkpoint left: training starts at step 0")
    return None


def _checkpoint_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name not in (MANIFEST, f".{MANIFEST}.tmp"))


def _describe(path: Path) -> dict:
    with open(path, "rb") as handle:
        return {"size": os.fstat(handle.fileno()).st_size, "sha256": hashlib.file_digest(handle, "sha256").hexdigest()}


class Sigterm:
    """While training, SIGTERM sets `received`, so the step in progress ends with a checkpoint; then
    `forward` hands it on to the handler from before (the CLI's exits 143). A second one goes on at once.
    `on_signal` is called at the first (the engine running several ranks tells them to stop)."""

    def __init__(self, on_signal=None):
        self.received = False
        self.on_signal = on_signal
        self.previous = None  # the handler to restore; None while ours is not installed

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGTERM, self._handle) or signal.SIG_DFL
        except ValueError:  # not the main thread, where alone handlers may be set: SIGTERM acts as before
            pass
        return self

    def _handle(self, signum, frame):
        if self.received:
            self.forward()
            return
        self.received = True
        if self.on_signal is not None:
            self.on_signal()

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None

    def forward(self) -> None:
        self.__exit__()
        os.kill(os.getpid(), signal.SIGTERM)


