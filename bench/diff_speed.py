"""Wall time of `engine diff` on two specs (target: under 0.3 s on 2 cores), against a git revision,
and on a data-only commit of a 50 MB data file (the input digests come from git blobs).

Run: .venv/bin/python bench/diff_speed.py
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


def timed(argv, cwd, repeats=15):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


with tempfile.TemporaryDirectory() as tmp:
    root = Path(tmp)
    text = (REPO / "specs" / "quickstart.yaml").read_text()
    (root / "a.yaml").write_text(text)
    (root / "b.yaml").write_text(text.replace("learning_rate: 3.0e-4", "learning_rate: 1.0e-4").replace("temperature: 0.8", "temperature: 0.6"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run("git init -q && git add a.yaml && git commit -qm a", shell=True, cwd=root, env=env, check=True)
    for argv in ([ENGINE, "diff", "a.yaml", "b.yaml"], [ENGINE, "diff", "a.yaml", "b.yaml", "--markdown"],
                 [ENGINE, "diff", "HEAD:a.yaml", "b.yaml"]):
        median, best = timed(argv, root)
        print(f"engine {' '.join(argv[1:]):40s} median {median:.3f} s  best {best:.3f} s")

with tempfile.TemporaryDirectory() as tmp:  # a data-only change: specs/x.yaml reads ../data/train.jsonl
    root = Path(tmp)
    (root / "specs").mkdir()
    (root / "data").mkdir()
    line = '{"title": "Scene", "text": "' + "word " * 200 + '"}\n'
    (root / "data" / "train.jsonl").write_text(line * (50_000_000 // len(line)))
    (root / "specs" / "x.yaml").write_text("spec_version: 1\nname: x\nmodel: {builtin: smollm2-135m}\n"
                                          "data: {source: {files: ../data/train.jsonl}, text: '{text}'}\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run("git init -q && git add -A && git commit -qm a", shell=True, cwd=root, env=env, check=True)
    with open(root / "data" / "train.jsonl", "a") as handle:
        handle.write(line)
    subprocess.run("git commit -qam b", shell=True, cwd=root, env=env, check=True)
    argv = [ENGINE, "diff", "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml", "--exit-code"]
    start = time.perf_counter()
    code = subprocess.run(argv, cwd=root, capture_output=True).returncode
    cold = time.perf_counter() - start
    assert code == 1, "a data-only commit must diff as a change"
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(argv, cwd=root, capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"engine diff of a data-only commit (50 MB file)     cold {cold:.3f} s  warm median {statistics.median(times):.3f} s")
