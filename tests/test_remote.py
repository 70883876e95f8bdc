"""A store the team shares: `engine cache push/pull URL` and `runtime.remote`, through the real CLI.

Every test runs against a `file://` remote and against a real S3 API: moto's server, started on
the loopback as a separate process, reached through s3fs. Projects are real git projects with the
fast fake stages (tests/test_team_contract.py).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from engine.cli import main
from engine.core.store import Store
from projects import engine, entries, git, ran

SPEC = "specs/x.yaml"
STAGES = ["model", "data", "train", "evaluate", "generate"]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """An S3 API on 127.0.0.1 served by `python -m moto.server` in its own process."""
    pytest.importorskip("moto.server", reason="moto[server] is in the dev extra: pip install -e '.[dev]'")
    pytest.importorskip("s3fs", reason="s3fs is in the dev extra: pip install -e '.[dev]'")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                raise RuntimeError(f"moto server did not start: {log.read_text()}")
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    server.wait(10)


@pytest.fixture(params=["file", "s3"])
def remote(request, tmp_path, monkeypatch) -> str:
    """A remote URL: a folder, or a fresh bucket on the moto server (credentials in the environment)."""
    if request.param == "file":
        return (tmp_path / "remote").as_uri()
    endpoint = request.getfixturevalue("moto_endpoint")
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    import s3fs

    bucket = f"team-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/engine"


def remote_fs(url: str):
    import fsspec

    return fsspec.core.url_to_fs(url, skip_instance_cache=True)


def clone(project: Path, tmp_path: Path, monkeypatch) -> Path:
    """Commit the project, clone it at another path with an empty store of its own; cd there."""
    git(project, "add", "-A")
    git(project, "commit", "-qm", "experiment")
    other = tmp_path / "elsewhere" / "clone"
    git(tmp_path, "clone", "-q", str(project), str(other))
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "clone-store"))
    os.chdir(other)
    return other


def actions(capsys, spec=SPEC) -> dict[str, str]:
    capsys.readouterr()
    assert main(["plan", spec, "--json"]) == 0
    return {s["stage"]: s["action"] for s in json.loads(capsys.readouterr().out)}


# -- push and pull ------------------------------------------------------------------------------

def test_a_clone_that_pulls_plans_everything_cached_and_reruns_nothing(project, tmp_path, capsys, fakes, monkeypatch, remote):
    assert main(["run", SPEC]) == 0
    record = (project / "specs" / "x.lock.json").read_text()
    capsys.readouterr()
    assert main(["cache", "push", remote]) == 0
    out = capsys.readouterr().out
    assert "pushed 5 entries" in out and all(f"scenes/{stage}" in out for stage in STAGES)
    assert main(["cache", "push", remote]) == 0  # a second push sends nothing
    out = capsys.readouterr().out
    assert "pushed 0 entries (0 B)" in out and "skipped 5 already on the remote" in out

    clone(project, tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["plan", SPEC, "--json"]) == 0
    before = {s["stage"]: s for s in json.loads(capsys.readouterr().out)}
    assert {s["action"] for s in before.values()} == {"run"}
    assert before["data"]["key"] is None  # keyed on the model's tokenizer: known once the model is here
    assert main(["cache", "pull", remote, "--spec", SPEC]) == 0
    assert "pulled 5 entries" in capsys.readouterr().out
    assert set(actions(capsys).values()) == {"cached"}
    ran(fakes)
    assert main(["run", SPEC]) == 0
    assert ran(fakes) == []
    assert Path(SPEC).with_name("x.lock.json").read_text() == record  # the record is byte-identical
    assert main(["cache", "verify"]) == 0


def test_pull_spec_fetches_only_what_the_plan_needs(project, tmp_path, capsys, fakes, monkeypatch, remote):
    (project / "specs" / "y.yaml").write_text((project / "specs" / "x.yaml").read_text().replace("5.0e-5", "1.0e-4"))
    assert main(["run", SPEC]) == 0
    assert main(["run", "specs/y.yaml"]) == 0  # y shares model and data with x
    assert main(["cache", "push", remote]) == 0
    clone(project, tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["cache", "pull", remote, "--spec", "specs/y.yaml", "--json"]) == 0
    tally = json.loads(capsys.readouterr().out)
    assert sorted(m["entry"] for m in tally["pulled"]) == sorted(f"scenes/{s}" for s in STAGES)
    assert len(entries(tmp_path / "clone-store")) == 5  # not x's train, evaluate, generate
    assert actions(capsys) == {"model": "cached", "data": "cached", "train": "run", "evaluate": "run", "generate": "run"}
    assert main(["cache", "pull", remote]) == 0  # without --spec: everything on the remote
    assert "pulled 3 entries" in capsys.readouterr().out
    assert set(actions(capsys).values()) == {"cached"}


def test_run_reads_the_remote_by_default_and_pushes_only_when_the_operator_says(project, tmp_path, capsys, fakes,
                                                                                monkeypatch, remote):
    monkeypatch.setenv("ENGINE_REMOTE", remote)
    assert main(["run", SPEC]) == 0  # reads only: nothing is written to the remote
    assert "it holds no entries yet" in capsys.readouterr().err
    fs, root = remote_fs(remote)
    assert not fs.exists(f"{root}/engine-remote.json")
    assert main(["run", SPEC, "--force", "train"]) == 0
    assert not fs.exists(f"{root}/engine-remote.json")
    monkeypatch.setenv("ENGINE_REMOTE_PUSH", "1")
    assert main(["run", SPEC, "--force", "generate"]) == 0
    assert "pushed 1" in capsys.readouterr().err  # only what this run built
    monkeypatch.delenv("ENGINE_REMOTE_PUSH")
    assert main(["run", SPEC, "--force", "model", "--push"]) == 0
    assert "pushed 4; 1 already there" in capsys.readouterr().err

    # the clone names the remote in its spec (runtime is never hashed: same keys); ENGINE_REMOTE unset
    monkeypatch.delenv("ENGINE_REMOTE")
    spec = project / "specs" / "x.yaml"
    spec.write_text(spec.read_text() + f"runtime: {{remote: '{remote}'}}\n")
    (project / "specs" / "x.lock.json").unlink()
    other = clone(project, tmp_path, monkeypatch)
    ran(fakes)
    capsys.readouterr()
    assert main(["plan", SPEC]) == 0
    assert f"remote {remote}: `engine run` pulls each stage it has instead of building it" in capsys.readouterr().out
    assert main(["run", SPEC]) == 0
    err = capsys.readouterr().err
    assert ran(fakes) == [] and err.count("pulled from") == 5, err
    assert "nothing to do: every stage is cached" in err
    assert set(actions(capsys).values()) == {"cached"}
    assert json.loads((other / "specs" / "x.lock.json").read_text())["nodes"].keys() == set(STAGES)
    monkeypatch.setenv("ENGINE_REMOTE", "none")  # the operator turns the spec's remote off
    assert main(["run", SPEC, "--force", "train"]) == 0
    assert "pulled" not in capsys.readouterr().err


def test_a_published_entry_is_never_replaced_by_a_different_build(project, tmp_path, capsys, monkeypatch, remote):
    assert main(["run", SPEC]) == 0
    assert main(["cache", "push", remote]) == 0
    key = entries(tmp_path / "store")["train"]
    fs, root = remote_fs(remote)
    published = fs.cat_file(f"{root}/entries/{key[:2]}/{key}/manifest.json")
    store = Store(tmp_path / "other-store")  # the same key built elsewhere, with other bytes
    staging = store.new_staging(key)
    (staging / "out" / "params.json").write_text("a nondeterministic build")
    original = Store(tmp_path / "store").check(key)[0].manifest
    store.commit(staging, key, {k: original[k] for k in ("node", "spec", "payload", "result", "wall_s")})
    capsys.readouterr()
    assert main(["cache", "push", remote, "--store", str(store.root)]) == 0
    assert "pushed 0 entries" in capsys.readouterr().out
    assert fs.cat_file(f"{root}/entries/{key[:2]}/{key}/manifest.json") == published


# -- faults -------------------------------------------------------------------------------------

def test_an_interrupted_push_publishes_nothing_half_and_the_next_push_completes(project, tmp_path, capsys, fakes,
                                                                               monkeypatch, remote):
    assert main(["run", SPEC]) == 0
    key = entries(tmp_path / "store")["train"]
    proc = engine(project, "cache", "push", remote, ENGINE_FAULT="before-publish:train:kill")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, out + err  # SIGKILL after train's files were sent, before its manifest
    fs, root = remote_fs(remote)
    assert fs.glob(f"{root}/entries/{key[:2]}/{key}/files.*/params.json")  # the files are there...
    assert not fs.exists(f"{root}/entries/{key[:2]}/{key}/manifest.json")  # ...but not published
    clone(project, tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["cache", "pull", remote, "--spec", SPEC]) == 0
    assert "train" not in entries(tmp_path / "clone-store")
    assert actions(capsys)["train"] == "run"

    os.chdir(project)
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "store"))
    assert main(["cache", "push", remote]) == 0
    assert "scenes/train" in capsys.readouterr().out
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "clone-store"))
    os.chdir(tmp_path / "elsewhere" / "clone")
    assert main(["cache", "pull", remote, "--spec", SPEC]) == 0
    assert set(actions(capsys).values()) == {"cached"}


def test_a_damaged_remote_object_is_refused_and_never_enters_the_store(project, tmp_path, capsys, fakes, monkeypatch,
                                                                       remote):
    assert main(["run", SPEC]) == 0
    assert main(["cache", "push", remote]) == 0
    key = entries(tmp_path / "store")["train"]
    fs, root = remote_fs(remote)
    [target] = fs.glob(f"{root}/entries/{key[:2]}/{key}/files.*/params.json")
    data = fs.cat_file(target)
    fs.pipe_file(target, bytes([data[0] ^ 1]) + data[1:])  # one flipped bit, same size
    clone(project, tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["cache", "pull", remote, "--spec", SPEC]) == 1
    out, err = capsys.readouterr()
    assert f"the remote's copy of scenes/train ({key[:12]}) is damaged: params.json: content differs from its " \
           f"manifest (sha256). It was not pulled; the local store does not have it. From a machine that has it, " \
           f"`engine cache push {remote} --repair` replaces it" in err
    assert "pulled 4 entries" in out  # the others arrive
    assert "train" not in entries(tmp_path / "clone-store")
    assert not list((tmp_path / "clone-store" / "tmp").glob(f"{key}*"))  # no staging left behind
    assert actions(capsys)["train"] == "run"

    ran(fakes)  # a run with the remote builds the damaged one here, and pulls the rest
    monkeypatch.setenv("ENGINE_REMOTE", remote)
    assert main(["run", SPEC]) == 0
    err = capsys.readouterr().err
    assert "is damaged" in err and "building it here" in err
    assert ran(fakes) == ["train"]

    os.chdir(project)  # a plain push keeps the damaged copy (a published entry is never replaced); --repair replaces it
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "store"))
    assert main(["cache", "push", remote]) == 0
    assert "pushed 0 entries" in capsys.readouterr().out
    assert main(["cache", "push", remote, "--repair"]) == 0
    out, err = capsys.readouterr()
    assert "is damaged: params.json: content differs from its manifest (sha256): replacing it" in err
    assert "pushed 1 entries" in out and "skipped 4 already on the remote (verified); 1 replaced a damaged copy on the remote" in out
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "third-store"))
    assert main(["cache", "pull", remote]) == 0
    assert "pulled 5 entries" in capsys.readouterr().out


def test_a_remote_manifest_that_lies_about_its_key_is_refused(project, tmp_path, capsys, monkeypatch):
    remote = (tmp_path / "remote").as_uri()
    assert main(["run", SPEC]) == 0
    assert main(["cache", "push", remote]) == 0
    key = entries(tmp_path / "store")["train"]
    manifest_path = tmp_path / "remote" / "entries" / key[:2] / key / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["payload"]["params"]["train"]["learning_rate"] = 1  # a payload that is not this key's
    manifest_path.write_text(json.dumps(manifest))
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "empty"))
    capsys.readouterr()
    assert main(["cache", "pull", remote]) == 1
    assert "its manifest's payload does not hash to its key" in capsys.readouterr().err
    assert "train" not in entries(tmp_path / "empty")


# -- clear errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url, code, message", [
    ("xyz://somewhere/x", 2, "Protocol not known: xyz; use a URL fsspec knows"),
    ("gs://bucket/x", 2, "the gs:// backend is not installed (Please install gcsfs to access Google Storage); `pip install gcsfs`"),
    ("ssh://host/x", 2, "`pip install paramiko`"),
])
def test_a_remote_that_cannot_be_opened_names_the_fix(project, capsys, url, code, message):
    if url.startswith("gs") and _installed("gcsfs") or url.startswith("ssh") and _installed("paramiko"):
        pytest.skip("the backend is installed here")
    assert main(["cache", "pull", url]) == code
    assert message in capsys.readouterr().err


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_an_unreachable_or_empty_remote_is_a_clear_error(project, tmp_path, capsys, monkeypatch):
    assert main(["cache", "pull", (tmp_path / "nothing").as_uri()]) == 1
    assert "no engine remote at" in capsys.readouterr().err
    pytest.importorskip("s3fs")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "x",
                        "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    assert main(["run", SPEC]) == 0
    capsys.readouterr()
    assert main(["cache", "push", "s3://bucket/x"]) == 1
    err = capsys.readouterr().err
    assert "error: remote s3://bucket/x: reading engine-remote.json failed: EndpointConnectionError" in err
    assert "check the URL, the network and the credentials" in err and "Traceback" not in err
    monkeypatch.setenv("ENGINE_REMOTE", "s3://bucket/x")
    assert main(["run", SPEC, "--force", "train"]) == 1  # before anything is built
    assert "EndpointConnectionError" in capsys.readouterr().err


def test_push_needs_a_remote(project, capsys):
    assert main(["run", SPEC, "--push"]) == 2
    assert "--push (or ENGINE_REMOTE_PUSH=1) needs a remote" in capsys.readouterr().err


def test_runtime_remote_is_never_hashed(project, capsys, tmp_path):
    before = actions(capsys)
    assert main(["run", SPEC]) == 0
    spec = project / "specs" / "x.yaml"
    spec.write_text(spec.read_text() + f"runtime: {{remote: '{(tmp_path / 'r').as_uri()}'}}\n")
    assert set(actions(capsys).values()) == {"cached"} and set(before.values()) == {"run"}


def test_a_missing_bucket_is_named(project, capsys, monkeypatch, moto_endpoint):
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    assert main(["run", SPEC]) == 0
    capsys.readouterr()
    assert main(["cache", "push", "s3://no-such-bucket/engine"]) == 1
    assert ("error: remote s3://no-such-bucket/engine: writing engine-remote.json failed: The specified bucket does not "
            "exist; create the bucket first") in capsys.readouterr().err
    assert main(["cache", "pull", "s3://no-such-bucket/engine"]) == 1
    assert "no engine remote at s3://no-such-bucket/engine" in capsys.readouterr().err
