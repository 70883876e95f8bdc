"""`engine cache push URL` and `engine cache pull URL`: share store entries through a remote
(engine/app/transfer.py does it; engine/core/remote_store.py has the layout and the guarantees)."""
from __future__ import annotations

import json
import sys

from engine.cli import store_arg


def register(actions) -> None:
    """Add `push` and `pull` to the `cache` command's actions."""
    for name, handler, text, spec_help in (
            ("push", push, "send entries of the local store to a remote, each verified, never replacing one there",
             "only the entries this spec's plan finds in the local store (repeatable)"),
            ("pull", pull, "fetch entries from a remote into the local store, each verified on arrival",
             "only what this spec's plan needs and the local store lacks (repeatable)")):
        c = actions.add_parser(name, help=text, description=text + ". A remote is any fsspec URL: file:///srv/engine, "
                               "s3://bucket/prefix (pip install s3fs), gs://bucket/prefix (gcsfs), ssh://host/path (paramiko).")
        c.add_argument("url", metavar="URL", help="the remote store")
        c.add_argument("--spec", metavar="SPEC", action="append", default=[], help=spec_help)
        store_arg(c)
        c.add_argument("--json", action="store_true", help="print the tally as JSON")
        if name == "push":
            c.add_argument("--repair", action="store_true",
                           help="also read and hash the remote's copy of every entry this store has, and replace the "
                                "damaged ones (a whole entry is never replaced)")
        c.set_defaults(handler=handler)


class _Bytes:
    """One transient byte bar on stderr for the whole transfer (none when stderr is not a terminal),
    and a line per entry moved (none with --json): an engine.app.transfer.Progress."""

    def __init__(self, done: str, lines: bool):
        self.done, self.lines = done, lines  # done: "pushed" or "pulled"
        self.progress = self.task = None

    def start(self, verb: str) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        console = Console(file=sys.stderr)
        self.progress = Progress(TextColumn(f"  {verb}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)
        self.task = self.progress.add_task(verb, total=0)
        self.progress.start()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def moved(self, item: dict) -> None:
        from engine.app import size_text

        if self.lines:
            print(f"{self.done} {item['key'][:12]} {item['entry']}  {size_text(item['bytes'])}")

    def warn(self, text: str) -> None:
        print(text, file=sys.stderr)

    def grow(self, n: int) -> None:
        self.progress.update(self.task, total=(self.progress.tasks[0].total or 0) + n)

    def advance(self, n: int) -> None:
        self.progress.update(self.task, advance=n)


def _finish(args, done) -> int:
    from engine.app import size_text

    for problem in done.problems:
        print(f"error: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(done.as_json(), indent=2))
    else:
        size, seconds = done.bytes, done.seconds
        rate = f" ({size / 1e6 / seconds:.0f} MB/s)" if size > 1e6 and seconds > 0 else ""
        print(f"{done.verb} {len(done.moved)} entries ({size_text(size)}) in {seconds:.1f}s{rate}"
              + "".join(f"; {note}" for note in done.notes) + f" [{done.remote}]")
    return 0 if done.ok else 1


def push(args) -> int:
    from engine.app.transfer import push as send

    return _finish(args, send(args.url, args.spec, args.store, repair=args.repair, progress=_Bytes("pushed", not args.json)))


def pull(args) -> int:
    from engine.app.transfer import pull as fetch

    return _finish(args, fetch(args.url, args.spec, args.store, progress=_Bytes("pulled", not args.json)))
