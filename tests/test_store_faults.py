"""The store under faults a long-lived team store meets: nothing lost, nothing stale, no tracebacks.

Faults are injected through the real CLI: subprocesses, ENGINE_FAULT (the engine's fault hook),
file damage, planted symlinks, a tiny tmpfs where root may mount one.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import time

import pytest

from engine.cli import main
from engine.core.store import Store
from projects import engine, entries, plan_json, ran


def wait_for_line(stream, text: str, timeout: float = 30) -> str:
    deadline = time.time() + timeout
    seen = ""
    while time.time() < deadline:
        line = stream.readline()
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}; got {seen!r}")


# -- losing outputs ----------------------------------------------------------------------------

def test_gc_from_a_subfolder_keeps_everything_the_project_references(project, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ENGINE_STORE", str(project / ".engine"))  # the project's own store
    tmp_path = project / ".engine"
    (project / "specs" / "y.yaml").write_text((project / "specs" / "x.yaml").read_text().replace("5.0e-5", "1.0e-4"))
    assert main(["run", "specs/x.yaml"]) == 0
    assert main(["run", "specs/y.yaml"]) == 0
    assert main(["run", "specs/x.yaml", "--set", "train.epochs=2"]) == 0  # an override run's record is in the store
    before = sorted(p.name for p in (tmp_path / "store").glob("*/*"))
    os.chdir(project / "data")
    capsys.readouterr()
    assert main(["cache", "gc", "--grace", "0"]) == 0
    out = capsys.readouterr().out
    assert "keeping entries named by records in the working tree (3: " in out and ": 11 entries" in out
    assert "0 entries, 0 B freed" in out
    assert sorted(p.name for p in (tmp_path / "store").glob("*/*")) == before
    (project / "specs" / "y.lock.json").unlink()  # y's own stages are now unreferenced
    assert main(["cache", "gc", "--dry-run", "--grace", "0"]) == 0
    assert "would remove" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "store").glob("*/*")) == before
    assert main(["cache", "gc"]) == 0  # default grace: the fresh entries stay
    assert "younger than 1 h" in capsys.readouterr().out
    assert main(["cache", "gc", "--grace", "0"]) == 0
    removed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("removed")]
    assert len(removed) == 3  # y's train, evaluate and generate; model and data are shared with x
    os.chdir(project)
    ran(project.parent / "runs.log")
    assert main(["plan", "specs/x.yaml"]) == 0


def test_gc_never_removes_an_entry_a_running_build_holds_or_reads(project, tmp_path, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    (project / "specs" / "x.lock.json").unlink()
    store = Store(tmp_path / "store")
    keys = entries(tmp_path / "store")
    reading = store.hold(keys["data"])  # a long run that read data hours ago and is still training
    with store.lock(keys["train"]):
        assert main(["cache", "gc", "--grace", "0", "--records", str(project)]) == 0
    store.release(reading)
    out = capsys.readouterr().out
    assert "kept 2 entries a running build holds" in out
    assert {keys["data"], keys["train"]} <= set(entries(tmp_path / "store").values())
    assert main(["cache", "gc", "--grace", "0"]) == 2  # a store that is not the project's own: name the records
    assert "--records" in capsys.readouterr().err


def test_gc_refuses_to_guess_when_a_record_is_unreadable(project, tmp_path, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    (project / "specs" / "x.lock.json").write_text("{ half a record")
    assert main(["cache", "gc", "--grace", "0", "--records", str(project)]) == 1
    assert "nothing was removed" in capsys.readouterr().err
    assert len(entries(tmp_path / "store")) == 5


# -- stale or wrong results ------------------------------------------------------------------------

@pytest.mark.slow
def test_an_input_replaced_while_a_stage_reads_it_is_not_committed(project, tmp_path, fakes):
    data = project / "data" / "train.txt"
    original = data.read_text()
    proc = engine(project, "run", "specs/x.yaml", ENGINE_FAULT="before-commit:data:sleep=3")
    wait_for_line(proc.stderr, "fault: before-commit data")
    data.write_text(original + "\nACT IV. Added while the data stage ran.\n")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "input data/train.txt changed while data was reading it; nothing was committed" in out + err
    assert "data" not in entries(tmp_path / "store")
    data.write_text(original)  # the old bytes back: still a miss, never a stale hit
    ran(fakes)
    assert main(["run", "specs/x.yaml"]) == 0
    assert ran(fakes) == ["data", "train", "evaluate", "generate"]


def test_a_damaged_upstream_entry_is_rebuilt_before_a_stage_loads_it(project, tmp_path, capsys, fakes):
    assert main(["run", "specs/x.yaml"]) == 0
    model_key = entries(tmp_path / "store")["model"]
    weights = tmp_path / "store" / "store" / model_key[:2] / model_key / "out" / "params.json"
    st = weights.stat()
    text = weights.read_bytes()
    weights.write_bytes(bytes([text[0] ^ 1]) + text[1:])  # one flipped bit, same size
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the mtime put back
    ran(fakes)
    capsys.readouterr()
    assert main(["run", "specs/x.yaml", "--force", "train"]) == 0
    out = capsys.readouterr().err
    assert "cached output is damaged" in out and "rebuilding" in out
    assert ran(fakes) == ["model", "train", "evaluate", "generate"]
    assert list((tmp_path / "store" / "corrupt").iterdir())
    assert main(["cache", "verify"]) == 0


def test_cache_verify_rehashes_the_inputs_records_name(project, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    data = project / "data" / "train.txt"
    st = data.stat()
    data.write_text(data.read_text().replace("one", "One"))
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    capsys.readouterr()
    assert main(["cache", "verify"]) == 0
    out = capsys.readouterr().out
    assert "input data/train.txt differs from what x.lock.json recorded for data" in out
    assert "rehashed 2 input files and folders named by 1 records" in out


# -- clear errors ------------------------------------------------------------------------------------

def test_a_garbage_digest_database_is_rebuilt(project, tmp_path, fakes):
    assert main(["run", "specs/x.yaml"]) == 0
    (tmp_path / "store" / "state.sqlite").write_bytes(b"this is not sqlite" * 100)
    ran(fakes)
    assert main(["run", "specs/x.yaml"]) == 0
    assert ran(fakes) == []
    assert main(["plan", "specs/x.yaml"]) == 0


@pytest.mark.parametrize("damage", [{"files": {"params.json": {"size": "12"}}}, {"files": []}, {"payload": None}, []])
def test_a_manifest_with_missing_or_mistyped_fields_counts_as_damaged(project, tmp_path, capsys, fakes, damage):
    assert main(["run", "specs/x.yaml"]) == 0
    key = entries(tmp_path / "store")["generate"]
    manifest = tmp_path / "store" / "store" / key[:2] / key / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, **damage} if isinstance(damage, dict) else damage))
    ran(fakes)
    capsys.readouterr()
    assert main(["run", "specs/x.yaml"]) == 0
    assert ran(fakes) == ["generate"]
    assert main(["cache", "ls"]) == 0 and main(["cache", "verify"]) == 0


def entry_dir(store_root, key):
    return store_root / "store" / key[:2] / key


def test_cache_verify_hashes_trained_weights_whatever_their_stamp(project, tmp_path, capsys, fakes, monkeypatch):
    monkeypatch.setenv("FAKE_BIG", "train=65536")  # the train entry holds a weights file
    assert main(["run", "specs/x.yaml"]) == 0
    key = entries(tmp_path / "store")["train"]
    weights = entry_dir(tmp_path / "store", key) / "out" / "weights.bin"
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[40000] ^= 1  # one byte in the middle, same size
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the stat stamp put back
    capsys.readouterr()
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"damaged {key[:12]} scenes/train: weights.bin: content differs from manifest" in out
    assert "train" not in entries(tmp_path / "store")  # moved aside, so the next run rebuilds it
    ran(fakes)
    assert main(["run", "specs/x.yaml"]) == 0
    assert ran(fakes) == ["train"]  # evaluate and generate are keyed by train's key: still hits


def _cut_short(manifest):
    manifest.write_text(manifest.read_text()[:-40])


def _drop_result(manifest):
    manifest.write_text(json.dumps({k: v for k, v in json.loads(manifest.read_text()).items() if k != "result"}))


@pytest.mark.parametrize("damage, problem", [
    (_cut_short, "its manifest is not valid JSON (cut short?)"),
    (_drop_result, "its manifest has no result"),  # plan reads the model's tokenizer digest from it
    (lambda manifest: manifest.unlink(), "its manifest is missing"),
    (lambda manifest: manifest.write_bytes(b"\xff\xfe{}"), "its manifest is unreadable (UnicodeDecodeError)"),
])
def test_a_malformed_manifest_is_reported_moved_aside_and_rebuilt(project, tmp_path, capsys, fakes, damage, problem):
    assert main(["run", "specs/x.yaml"]) == 0
    key = entries(tmp_path / "store")["model"]
    damage(entry_dir(tmp_path / "store", key) / "manifest.json")
    steps = plan_json(capsys)  # a miss with its reason, never a KeyError
    assert steps["model"]["action"] == "run" and steps["model"]["why"][0] == f"cached output is damaged ({problem}); rebuilding"
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"damaged {key[:12]} ?/?: {problem} (moved to " in out and "verified 5 entries: 4 ok, 1 damaged" in out
    [aside] = (tmp_path / "store" / "corrupt").iterdir()
    assert aside.name.startswith(key) and (aside / "REASON").read_text() == problem + "\n"
    assert not entry_dir(tmp_path / "store", key).exists()
    ran(fakes)
    assert main(["run", "specs/x.yaml"]) == 0
    assert ran(fakes) == ["model"]  # the same tokenizer digest: data and the rest are still hits
    assert main(["cache", "verify"]) == 0


@pytest.mark.parametrize("damage", [
    lambda manifest: {**manifest, "result": {"metrics": manifest["result"]["metrics"]}},  # result without digests
    lambda manifest: {**manifest, "result": {**manifest["result"], "digests": {"weights": "abc"}}},  # without the part
    lambda manifest: {**manifest, "result": {}},
])
def test_a_manifest_without_the_output_digest_a_stage_reads_is_damaged_not_a_keyerror(project, tmp_path, capsys, fakes,
                                                                                       damage):
    assert main(["run", "specs/x.yaml"]) == 0
    key = entries(tmp_path / "store")["model"]
    manifest = entry_dir(tmp_path / "store", key) / "manifest.json"
    manifest.write_text(json.dumps(damage(json.loads(manifest.read_text()))))
    problem = "its manifest lacks the output digest 'tokenizer'"  # data's key reads the model's tokenizer digest
    assert plan_json(capsys)["model"]["why"][0] == f"cached output is damaged ({problem}); rebuilding"
    assert main(["show", "specs/x.yaml"]) == 0 and "Traceback" not in capsys.readouterr().err
    assert main(["cache", "verify"]) == 1
    assert f"damaged {key[:12]} scenes/model: {problem} (moved to " in capsys.readouterr().out
    ran(fakes)
    assert main(["run", "specs/x.yaml"]) == 0
    assert ran(fakes) == ["model"]


def test_a_run_rebuilds_an_entry_without_the_output_digest_a_stage_reads(project, tmp_path, capsys, fakes):
    assert main(["run", "specs/x.yaml"]) == 0
    key = entries(tmp_path / "store")["model"]
    manifest = entry_dir(tmp_path / "store", key) / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "result": {}}))
    ran(fakes)
    assert main(["run", "specs/x.yaml"]) == 0  # no verify first: the run itself moves it aside
    assert ran(fakes) == ["model"]
    assert "its manifest lacks the output digest 'tokenizer'" in (
        next((tmp_path / "store" / "corrupt").iterdir()) / "REASON").read_text()


def test_cache_ls_and_gc_list_a_damaged_manifest(project, tmp_path, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    key = entries(tmp_path / "store")["train"]
    _cut_short(entry_dir(tmp_path / "store", key) / "manifest.json")
    capsys.readouterr()
    assert main(["cache", "ls"]) == 0
    captured = capsys.readouterr()
    assert "5 entries" in captured.out and "; 1 damaged" in captured.out
    assert f"damaged {key[:12]}: its manifest is not valid JSON (cut short?)" in captured.err
    assert main(["cache", "ls", "--json"]) == 0
    listed = {row["key"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[key]["damaged"] == "its manifest is not valid JSON (cut short?)" and listed[key]["bytes"] > 0
    assert main(["cache", "gc", "--grace", "0", "--records", str(project)]) == 0
    assert f"damaged {key[:12]}: its manifest is not valid JSON (cut short?); not removed by gc" in capsys.readouterr().err
    assert entry_dir(tmp_path / "store", key).is_dir()  # left for verify, which moves it aside


def test_an_entry_whose_manifest_holds_another_keys_payload_is_refused(project, tmp_path, capsys, fakes):
    assert main(["run", "specs/x.yaml"]) == 0
    keys = entries(tmp_path / "store")
    store = tmp_path / "store"
    shutil.rmtree(entry_dir(store, keys["generate"]))
    shutil.copytree(entry_dir(store, keys["evaluate"]), entry_dir(store, keys["generate"]))
    manifest = entry_dir(store, keys["generate"]) / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "key": keys["generate"]}))  # relabelled
    problem = "its manifest's payload does not hash to its key"
    assert plan_json(capsys)["generate"]["why"][0] == f"cached output is damaged ({problem}); rebuilding"
    assert main(["cache", "verify"]) == 1
    assert f"damaged {keys['generate'][:12]} ?/?: {problem}" in capsys.readouterr().out
    ran(fakes)
    assert main(["run", "specs/x.yaml"]) == 0
    assert ran(fakes) == ["generate"]


def test_an_entry_whose_manifest_names_another_key_is_refused(project, tmp_path, capsys, fakes):
    assert main(["run", "specs/x.yaml"]) == 0
    keys = entries(tmp_path / "store")
    store = tmp_path / "store"
    shutil.rmtree(entry_dir(store, keys["generate"]))
    shutil.copytree(entry_dir(store, keys["evaluate"]), entry_dir(store, keys["generate"]))  # whole, but not generate's
    assert plan_json(capsys)["generate"]["why"][0] == "cached output is damaged (its manifest names another key); rebuilding"
    assert main(["cache", "verify"]) == 1
    assert f"damaged {keys['generate'][:12]} ?/?: its manifest names another key" in capsys.readouterr().out
    shutil.copytree(entry_dir(store, keys["evaluate"]), entry_dir(store, keys["generate"]))  # planted again
    ran(fakes)
    assert main(["run", "specs/x.yaml"]) == 0
    assert ran(fakes) == ["generate"]
    assert json.loads((entry_dir(store, keys["generate"]) / "manifest.json").read_text())["node"] == "generate"


def test_a_planted_lock_symlink_is_refused(project, tmp_path, capsys):
    assert main(["plan", "specs/x.yaml", "--json"]) == 0
    key = json.loads(capsys.readouterr().out)[0]["key"]
    locks = tmp_path / "store" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (locks / f"{key}.lock").symlink_to(victim)
    assert main(["run", "specs/x.yaml"]) == 1
    assert "is a symlink; refusing to follow it" in capsys.readouterr().err
    assert victim.read_text() == "keep me"


@pytest.mark.slow
def test_a_run_waiting_on_another_runs_lock_says_what_it_waits_for(project, tmp_path):
    first = engine(project, "run", "specs/x.yaml", ENGINE_FAULT="before-commit:train:sleep=3")
    wait_for_line(first.stderr, "fault: before-commit train")
    second = engine(project, "run", "specs/x.yaml")
    out, err = second.communicate(timeout=60)
    assert first.wait(60) == 0 and second.returncode == 0, out + err
    assert "waiting for another run that is building train" in out + err
    assert "built meanwhile by another run" in out + err


def tmpfs(mount, size: str):
    """Mount a tmpfs of `size` at `mount` (a new folder), or skip the test where that needs root."""
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def tiny_disk(tmp_path):
    yield from tmpfs(tmp_path / "tiny", "256k")


@pytest.fixture
def small_disk(tmp_path):
    yield from tmpfs(tmp_path / "small", "64m")


def fill_disk(folder) -> None:
    """Write into `folder` until its disk is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_disk_full_says_so_and_commits_nothing(project, tiny_disk, monkeypatch):
    store = tiny_disk / "store"
    proc = engine(project, "run", "specs/x.yaml", "--store", str(store), FAKE_BIG="train=1000000")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "disk full" in err and "MB free now" in err and "Traceback" not in out + err
    assert "train" not in entries(store)
    assert not [p for p in (store / "tmp").iterdir() if p.name.startswith(entries(store).get("train", "-"))]


def test_disk_full_while_a_checkpoint_is_saved_says_so(scenes_project, small_disk, capsys, monkeypatch):
    from transformers import Trainer

    from tiny import write_spec

    real = Trainer._save_optimizer_and_scheduler

    def save(self, output_dir):  # the weights of the checkpoint are written; then the disk is full
        fill_disk(small_disk)
        return real(self, output_dir)  # torch.save: "[enforce fail at inline_container.cc] . unexpected pos"

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", save)
    write_spec(scenes_project, max_steps=4, save_every=2)
    store = small_disk / "store"
    assert main(["run", "spec.yaml", "--until", "train", "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert "disk full" in err and "MB free now" in err and f"the store at {store}" in err
    assert "unexpected pos" not in err and "Traceback" not in err
    assert sorted(entries(store)) == ["data", "model"]


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),  # torch's short write
    OSError(errno.ENOSPC, "No space left on device"),
    type("SafetensorError", (Exception,), {})(  # what safetensors' Rust writer raises on a full disk
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'),
])
def test_disk_full_while_torch_saves_a_checkpoint_names_the_store_and_the_space(scenes_project, capsys, monkeypatch,
                                                                                tmp_path, error):
    import torch

    from tiny import write_spec

    real = torch.save

    def save(obj, target, *args, **kwargs):  # the optimizer state of the first checkpoint meets a full disk
        if "optimizer" in str(target):
            raise error
        return real(obj, target, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    write_spec(scenes_project, max_steps=4, save_every=2)
    assert main(["run", "spec.yaml", "--until", "train"]) == 1
    err = " ".join(capsys.readouterr().err.split())  # the reporter wraps long lines
    store = tmp_path / "store"
    assert "disk full" in err and f"into the store at {store} when the disk ran out" in err and "MB free now" in err
    assert f"MB of checkpoints in {store / 'work'}" in err and "it needs more than" in err  # the weights were saved
    assert "unexpected pos" not in err and "Traceback" not in err
    assert sorted(entries(store)) == ["data", "model"]


def test_an_unreadable_input_is_a_clear_error(project, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    data = project / "data" / "train.txt"
    data.chmod(0)
    assert main(["plan", "specs/x.yaml"]) == 1
    assert "cannot read input data/train.txt" in capsys.readouterr().err


def test_sigterm_mid_stage_exits_143_caches_nothing_and_says_how_to_continue(project, tmp_path, fakes):
    proc = engine(project, "run", "specs/x.yaml", ENGINE_FAULT="before-commit:train:sleep=30")
    wait_for_line(proc.stderr, "fault: before-commit train")
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, out + err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert sorted(entries(tmp_path / "store")) == ["data", "model"]
    assert not list((tmp_path / "store" / "tmp").iterdir())


def test_a_read_only_store_with_a_changed_input_is_a_clear_error(project, tiny_disk, fakes):
    store = tiny_disk / "store"
    assert main(["run", "specs/x.yaml", "--store", str(store)]) == 0
    if subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], capture_output=True).returncode:
        pytest.skip("cannot remount read-only here")
    ran(fakes)
    assert main(["run", "specs/x.yaml", "--store", str(store)]) == 0  # all hits: a read-only store still serves
    assert ran(fakes) == []
    (project / "data" / "train.txt").write_text("changed\n")
    proc = engine(project, "run", "specs/x.yaml", "--store", str(store))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in out + err
    assert "cannot create a lock" in err and "Read-only file system" in err and "--store DIR" in err


@pytest.mark.parametrize("text", ["[]", '{"nodes": []}', '{"nodes": {"train": 3}}', "{ not json"])
def test_a_malformed_record_is_ignored_with_a_warning(project, capsys, text):
    assert main(["run", "specs/x.yaml"]) == 0
    (project / "specs" / "x.lock.json").write_text(text)
    capsys.readouterr()
    assert main(["plan", "specs/x.yaml"]) == 0
    assert "warning: ignoring the record" in capsys.readouterr().err
    assert main(["show", "specs/x.yaml"]) == 1
    assert "no record for specs/x.yaml" in capsys.readouterr().err
    assert main(["run", "specs/x.yaml"]) == 0  # rewrites it
    assert json.loads((project / "specs" / "x.lock.json").read_text())["nodes"]
