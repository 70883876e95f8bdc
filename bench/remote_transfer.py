"""Push and pull through a remote: `engine cache push URL` and `engine cache pull URL` as a user
runs them, against a file:// folder and against a real S3 API (moto's server on the loopback).

Two stores in a temp dir: one with N entries of M MB each (random bytes, so nothing compresses)
plus one entry of many small files; the other empty. Times the CLI pushing all of it, pulling all
of it into the empty store (every file hashed on arrival), and a second push that finds
everything there.
Run: .venv/bin/python bench/remote_transfer.py [N] [MB]     (default 8 entries of 16 MB)
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ENGINE = str(Path(sys.executable).parent / "engine")


def fill(root: Path, count: int, megabytes: int) -> int:
    """N entries of one file of `megabytes` MB, and one entry of 500 files of 4 KB; total bytes."""
    from engine.core.payload import key_of
    from engine.core.store import Store

    store = Store(root)
    store.prepare()
    total = 0
    for i in range(count + 1):
        payload = {"kind": "bench", "version": 1, "params": {"i": i}, "upstream": {}, "inputs": {}, "libraries": {}}
        key = key_of(payload)
        staging = store.new_staging(key)
        if i < count:
            (staging / "out" / "weights.bin").write_bytes(os.urandom(megabytes << 20))
            total += megabytes << 20
        else:
            for j in range(500):
                (staging / "out" / f"sample-{j:03d}.txt").write_bytes(os.urandom(4096))
            total += 500 * 4096
        store.commit(staging, key, {"node": f"bench-{i}", "spec": "bench", "payload": payload, "result": {}})
    return total


def timed(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([ENGINE, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"engine {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - started


def moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            return server, endpoint
        except OSError:
            time.sleep(0.2)
    raise SystemExit("moto server did not start")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    megabytes = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    server, endpoint = moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            total = fill(Path(tmp) / "a", count, megabytes)
            env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_DEFAULT_REGION": "us-east-1"}
            import s3fs

            os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
            s3fs.S3FileSystem(skip_instance_cache=True).mkdir("bench")
            print(f"{count} entries of {megabytes} MB + 1 entry of 500 files of 4 KB = {total / 1e6:.0f} MB")
            for url in (Path(tmp, "remote").as_uri(), "s3://bench/engine"):
                push = timed(["cache", "push", url, "--store", f"{tmp}/a"], env)
                again = timed(["cache", "push", url, "--store", f"{tmp}/a"], env)
                store_b = Path(tmp) / f"b-{url.split(':')[0]}"
                pull = timed(["cache", "pull", url, "--store", str(store_b)], env)
                print(f"{url.split('://')[0]:5}  push {push:5.2f} s ({total / 1e6 / push:5.0f} MB/s)   "
                      f"pull {pull:5.2f} s ({total / 1e6 / pull:5.0f} MB/s)   second push (all there) {again:4.2f} s")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
