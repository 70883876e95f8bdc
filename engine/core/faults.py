"""Fault injection for tests of the engine's guarantees, through the real CLI.

ENGINE_FAULT=POINT:NODE:ACTION acts when the runner reaches POINT for node NODE: `before-commit`
(the stage has written its output, which is not yet committed; NODE is a stage name) or
`train-step` (a training step has ended; NODE is `rank-N`, `rank-0` on one process). ACTION is
`sleep=SECONDS` (announced on stderr first, so a test can act meanwhile: replace an input, send a
signal, start a second run), `kill` (SIGKILL this process) or `fail`. Unset, it costs one lookup.
"""
from __future__ import annotations

import os
import signal
import sys
import time

from engine.errors import StageError


def fault_hook(point: str, node: str) -> None:
    """Act on ENGINE_FAULT when it names this point and node (see module docstring)."""
    wanted = os.environ.get("ENGINE_FAULT", "")
    if not wanted:
        return
    want_point, _, rest = wanted.partition(":")
    want_node, _, action = rest.rpartition(":")
    if (want_point, want_node) != (point, node):
        return
    if action.startswith("sleep="):
        print(f"fault: {point} {node}: sleeping {action[6:]} s", file=sys.stderr, flush=True)
        time.sleep(float(action[6:]))
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "fail":
        raise StageError(f"fault injected at {point} {node}")
