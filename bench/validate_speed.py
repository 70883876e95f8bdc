"""Wall time of `engine validate specs/quickstart.yaml` and `engine schema`, as a user runs them.

"warm": the spec was validated before (its resolved document is in the valid-spec cache, so
jsonschema is not even imported); "cold": a fresh cache dir each time, full validation.
Run: .venv/bin/python bench/validate_speed.py   (target: validate under 0.25 s on 2 cores)
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINE = [str(Path(sys.executable).parent / "engine")]


def wall(argv: list[str], repeats: int = 15, cold: bool = False) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, **({"ENGINE_CACHE_DIR": cache} if cold else {})}
            start = time.perf_counter()
            subprocess.run(ENGINE + argv, cwd=REPO, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


if __name__ == "__main__":
    for argv, cold in ((["validate", "specs/quickstart.yaml"], True), (["validate", "specs/quickstart.yaml"], False),
                       (["schema"], False), (["--version"], False)):
        median, best = wall(argv, cold=cold)
        label = " ".join(argv) + (" (cold)" if cold else " (warm)" if argv[0] == "validate" else "")
        print(f"engine {label:45s} median {median:.3f} s  best {best:.3f} s")
