"""No-op `engine run` and `engine plan` on a project whose data is one 200 MB file and 5,000 small files.

Builds the project in a temp dir, runs it once with fast stand-in stages (so every entry exists),
then times the real CLI (`engine run`, `engine plan`) with everything cached, as a user sees it.
Run: .venv/bin/python bench/noop_run.py     (target: no-op run under 0.25 s on 2 cores)
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
ENGINE = str(Path(sys.executable).parent / "engine")

SPEC = """\
spec_version: 1
name: noop
model: {path: model}
data:
  source: {files: [big/corpus.txt, "small/*.txt"], txt_unit: file}
train: {max_steps: 1}
evaluate: {}
generate: {prompts: [x]}
"""


def build(root: Path) -> None:
    (root / "big").mkdir()
    block = os.urandom(1 << 20).hex()[: 1 << 20].encode()
    with open(root / "big" / "corpus.txt", "wb") as handle:
        for _ in range(200):
            handle.write(block)
    (root / "small").mkdir()
    for i in range(5000):
        (root / "small" / f"{i:05d}.txt").write_text(f"tune {i}\n" * 20)
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text("{}")
    (root / "model" / "model.safetensors").write_bytes(b"\0" * 1024)
    (root / "spec.yaml").write_text(SPEC)
    (root / ".git").mkdir()  # project root: the store goes to .engine/ here


def timed(argv: list[str], cwd: Path, repeats: int = 10) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root)
        env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
        env.pop("ENGINE_STORE", None)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "tests" / "fake_stages.py"), "run", "spec.yaml"], cwd=root, env=env, check=True,
                       capture_output=True)
        print(f"first run (hashing 200 MB + 5,000 files, stand-in stages): {time.perf_counter() - start:.2f} s")
        for argv in ([ENGINE, "run", "spec.yaml"], [ENGINE, "plan", "spec.yaml"]):
            times = timed(argv, root)
            print(f"engine {argv[1]:5s} no-op: median {statistics.median(times):.3f} s, best {min(times):.3f} s")
        times = timed([ENGINE, "run", "spec.yaml", "--rehash"], root, repeats=3)
        print(f"engine run --rehash (full content check): median {statistics.median(times):.3f} s")
        if subprocess.run(["which", "dvc"], capture_output=True).returncode == 0:
            print("dvc is installed; compare with `dvc repro` on the same data by hand")


if __name__ == "__main__":
    main()
