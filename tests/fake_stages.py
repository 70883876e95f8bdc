"""Fast stand-ins for the real stages: same VERSION, reads and inputs (so the same keys), but a
`run` that only writes its params and appends its name to $FAKE_LOG. Used to test the core."""
from __future__ import annotations

import hashlib
import json
import os
import time
import types
from pathlib import Path

from engine.stages import STAGES
from engine.errors import StageError


def fake_run(kind: str):
    def run(ctx):
        log = os.environ.get("FAKE_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(f"{ctx.name}\n")
        if os.environ.get("FAKE_FAIL") == ctx.name:
            raise StageError(f"{ctx.name} failed on purpose")
        if os.environ.get("FAKE_SLOW") == ctx.name:
            Path(os.environ["FAKE_MARK"]).write_text("started")
            time.sleep(float(os.environ.get("FAKE_SLEEP", "30")))
        if os.environ.get("FAKE_BIG", "").startswith(ctx.name + "="):  # FAKE_BIG=train=BYTES: a large output
            (ctx.out / "weights.bin").write_bytes(b"w" * int(os.environ["FAKE_BIG"].split("=")[1]))
        (ctx.out / "params.json").write_text(json.dumps(ctx.params, sort_keys=True))
        (ctx.out / "inputs.json").write_text(json.dumps(sorted(ctx.inputs)))
        metrics = {"value": 1.5}
        if os.environ.get("FAKE_LOSS"):  # a `loss` that differs between nodes fed differently (sweep variants)
            seen = json.dumps([ctx.params, sorted(str(p.parent.name) for p in ctx.inputs.values())], sort_keys=True)
            metrics["loss"] = int(hashlib.sha256(seen.encode()).hexdigest()[:6], 16) / 2**24
        return {"metrics": metrics, "digests": {"tokenizer": "fake-tokenizer-digest"}}

    return run


def install(stages=STAGES) -> None:
    """Replace every stage's run with the fake (in place, in this process)."""
    for kind, module in list(stages.items()):
        real = getattr(module, "_real", module)
        stages[kind] = types.SimpleNamespace(VERSION=real.VERSION, LIBRARIES=real.LIBRARIES, reads=real.reads,
                                             IGNORES=getattr(real, "IGNORES", {}), ROLES=real.ROLES,
                                             PRODUCES=real.PRODUCES, **({"ignores": real.ignores} if hasattr(real, "ignores") else {}),
                                             inputs=real.inputs, run=fake_run(kind), _real=real)


if __name__ == "__main__":  # python fake_stages.py engine-args...: run the CLI with fake stages
    import sys

    from engine.cli import main

    install()
    sys.exit(main(sys.argv[1:]))
