"""The train stage on several processes: the engine starts the ranks, relays them, and commits.

    engine run (one process: plans, runs the other stages, commits)
      train stage: writes <work>/distributed/context.json, then starts and waits for
        python -m torch.distributed.run --nproc-per-node N [--nnodes M --node-rank R ...]
              -m engine.training.worker <work>/distributed/context.json
          rank 0 ........ rank N-1: train together (DDP or FSDP); rank 0 alone logs; local rank 0 writes
                          the model into the stage's output dir and result.json; all share <work>/checkpoints
      reads result.json and returns it: the runner commits the entry, as for one process

Rank 0's log lines and progress reach the engine as JSON lines on stdout (EVENT prefix); what the
ranks write to stderr is kept in <work>/distributed/ranks.log. A rank that fails (an exception, a
signal, an exit) makes torchrun end the others; the stage fails naming the rank and its error, and
nothing is committed. SIGTERM to the engine asks every rank to stop at the same step with a
checkpoint (a STOP file the ranks look for); a second SIGTERM, Ctrl-C or any error ends the
process group at once. Ranks end themselves when the engine process is gone.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from engine.errors import StageError
from engine.spec import thaw
from engine.training.checkpoints import Sigterm
from engine.training.distributed import Launch

EVENT = "@engine-event "  # a line of rank 0's stdout that carries a log line or progress, as JSON
STOP, RESULT, LOG = "STOP", "result.json", "ranks.log"
GRACE_S = 10  # after Ctrl-C: how long the ranks get to end on SIGTERM before SIGKILL


def command(launch: Launch, context: Path) -> list[str]:
    """The torchrun command line: `--standalone` on one node (a free port, no clash with another
    run on the machine), a static rendezvous at MASTER_ADDR:MASTER_PORT across nodes."""
    if launch.nodes == 1:
        meet = ["--standalone", "--nnodes", "1"]
    else:
        meet = ["--nnodes", str(launch.nodes), "--node-rank", str(launch.node_rank),
                "--master-addr", launch.master_addr, "--master-port", str(launch.master_port)]
    return [sys.executable, "-m", "torch.distributed.run", *meet, "--nproc-per-node", str(launch.processes),
            "--max-restarts", "0", "-m", "engine.training.worker", str(context)]


def launch(ctx, settings: Launch, resume: Path | None) -> dict:
    """Run the train stage on `settings.world` ranks; the result of local rank 0, for the runner."""
    folder = ctx.work / "distributed"
    shutil.rmtree(folder, ignore_errors=True)  # an earlier attempt's result, errors or STOP are not this one's
    folder.mkdir(parents=True)
    context = folder / "context.json"
    context.write_text(json.dumps({
        "name": ctx.name, "params": thaw(ctx.params), "inputs": {role: str(path) for role, path in ctx.inputs.items()},
        "out": str(ctx.out), "work": str(ctx.work), "seed": ctx.seed, "spec_root": str(ctx.spec_root),
        "runtime": thaw(ctx.runtime or {}), "options": ctx.options, "resume": str(resume) if resume else None,
        "engine_pid": os.getpid(),
    }, indent=1, default=str), encoding="utf-8")
    how = "FSDP" if (ctx.runtime or {}).get("fsdp") is not None else "DDP"
    where = (f"{settings.nodes} nodes x {settings.processes} processes (this is node {settings.node_rank})"
             if settings.nodes > 1 else f"{settings.processes} processes")
    ctx.log(f"training on {where}, {how}, started with torch.distributed.run; rank 0 reports here, every rank's "
            f"own output goes to {folder / LOG}")
    sigterm = Sigterm(on_signal=lambda: (folder / STOP).touch())
    with open(folder / LOG, "wb") as log, sigterm:
        process = subprocess.Popen(command(settings, context), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        try:
            relay(process.stdout, ctx)
            code = process.wait()
        except BaseException:  # Ctrl-C, a second SIGTERM, a failing reporter: no rank outlives the stage
            end_group(process)
            raise
    if code != 0:
        raise StageError(failure(folder, code, settings))
    result = json.loads((folder / RESULT).read_text(encoding="utf-8"))
    stopped = result.pop("stopped", None)
    if stopped:
        ctx.log(stopped)
        if sigterm.received:
            sigterm.forward()  # the handler from before training ends the process (the CLI: exit 143)
        raise StageError(stopped)
    return result


def relay(stream, ctx) -> None:
    """Rank 0's events to the reporter (log lines, one progress bar); other lines as log lines."""
    bar = None
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if not line.startswith(EVENT):
            if line.strip():
                ctx.log(line)
            continue
        event = json.loads(line[len(EVENT):])
        if "log" in event:
            ctx.log(event["log"])
        elif "bar" in event:
            bar = ctx.bar(event["bar"], event["description"])
        elif "advance" in event and bar is not None:
            bar.advance(event["advance"], **event.get("fields", {}))
        elif "close" in event and bar is not None:
            bar.close()
            bar = None
    if bar is not None:
        bar.close()


def end_group(process: subprocess.Popen) -> None:
    """SIGTERM to torchrun and every rank (their own process group), SIGKILL after GRACE_S."""
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def failure(folder: Path, code: int, settings: Launch) -> str:
    """What failed: the rank torchrun names as the first failure (the others' errors follow from it),
    with its own error when it wrote one, else how it ended; else the first error a rank wrote."""
    tail = f"nothing was committed; every rank's output is in {folder / LOG}"
    text = (folder / LOG).read_text(encoding="utf-8", errors="replace") if (folder / LOG).is_file() else ""
    root = re.search(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", text, re.S)
    errors = {p.stem.removeprefix("rank-"): p for p in folder.glob("rank-*.error")}
    if root and root.group(1) in errors:
        rank, said = root.group(1), errors[root.group(1)].read_text(encoding="utf-8").strip()
    elif root:
        rank, exit_code = root.group(1), int(root.group(2))
        said = f"killed by signal {-exit_code}" if exit_code < 0 else f"exited with code {exit_code}"
    elif errors:
        rank, path = min(errors.items(), key=lambda item: item[1].stat().st_mtime_ns)
        said = path.read_text(encoding="utf-8").strip()
    else:
        return f"the training processes ended with exit code {code} ({settings.world} ranks); {tail}"
    return f"rank {rank} of {settings.world} failed: {said}; {tail}"
