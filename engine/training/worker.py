"""One rank of a train stage on several processes (engine/training/launcher.py starts them all).

`python -m engine.training.worker CONTEXT.json`, under torch.distributed.run: re-creates the
stage's context from the file the engine wrote, trains with the others, and leaves the commit to
the engine. Rank 0 alone logs (as JSON lines on stdout); local rank 0 of each node writes the
model into the output dir and `result.json`; a rank that fails writes `rank-N.error` (what the
engine reports) and exits 1. A rank ends itself when the engine process that started it is gone.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from engine.core.context import StageContext
from engine.errors import EngineError
from engine.spec import freeze
from engine.training.distributed import Ranks
from engine.training.launcher import EVENT, RESULT


class Events:
    """The StageContext reporter of rank 0: each log line and progress change as one JSON line."""

    def __init__(self, stream):
        self.stream = stream

    def emit(self, **event) -> None:
        self.stream.write(EVENT + json.dumps(event) + "\n")
        self.stream.flush()

    def log(self, message: str) -> None:
        self.emit(log=message)

    def bar(self, total, description: str):
        self.emit(bar=total, description=description)
        return self

    def advance(self, steps: float = 1, **fields) -> None:
        self.emit(advance=steps, fields=fields)

    def close(self) -> None:
        self.emit(close=True)


def watch(pid: int) -> None:
    """End this rank when the engine process is gone (SIGKILL leaves no one to stop the ranks)."""

    def loop():
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=loop, name="engine-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    from engine.training.loop import train

    path = Path(argv[0])
    context = json.loads(path.read_text(encoding="utf-8"))
    ranks = Ranks.from_environment()
    watch(context["engine_pid"])
    events = Events(sys.stdout) if ranks.rank == 0 else None
    ctx = StageContext(
        name=context["name"], params=freeze(context["params"]),
        inputs={role: Path(p) for role, p in context["inputs"].items()}, out=Path(context["out"]),
        work=Path(context["work"]), seed=context["seed"], spec_root=Path(context["spec_root"]),
        runtime=freeze(context["runtime"]), options=context["options"],
        log=events.log if events else (lambda message: None), progress=events.bar if events else None,
    )
    resume = Path(context["resume"]) if context["resume"] else None
    try:
        result = train(ctx, ranks, resume)
    except BaseException as exc:  # noqa: BLE001 - every failure is the engine's to report
        said = str(exc) if isinstance(exc, EngineError) else "".join(traceback.format_exception_only(exc)).strip()
        if not isinstance(exc, EngineError):
            traceback.print_exc()  # into ranks.log
        (path.parent / f"rank-{ranks.rank}.error").write_text(said or type(exc).__name__, encoding="utf-8")
        return 1
    if ranks.writes:
        temporary = path.parent / f".{RESULT}.tmp"
        temporary.write_text(json.dumps(result), encoding="utf-8")
        os.replace(temporary, path.parent / RESULT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
