"""Wall time of `engine validate specs/quickstart.yaml` and `engine schema`, as a user runs them.

Run: .venv/bin/python bench/validate_speed.py   (target: validate under 0.25 s on 2 cores)
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINE = [str(Path(sys.executable).parent / "engine")]


def wall(argv: list[str], repeats: int = 15) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(ENGINE + argv, cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


if __name__ == "__main__":
    for argv in (["validate", "specs/quickstart.yaml"], ["schema"], ["--version"]):
        median, best = wall(argv)
        print(f"engine {' '.join(argv):40s} median {median:.3f} s  best {best:.3f} s")
