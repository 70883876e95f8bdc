"""Training on several processes: settings, the batch split, the launcher's reading of failures,
keys that ignore the process count, and through `engine run` on the CPU (gloo): two processes
against one, a rank that dies, SIGTERM to the engine."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import StageError
from engine.training import distributed, launcher, speed
from engine.training.distributed import Launch
from tiny import spec_text

ENV = {"MASTER_ADDR": "10.0.0.1", "NODE_RANK": "1"}


# -- settings and the batch split ------------------------------------------------------------------

def test_settings_from_runtime_and_the_rendezvous_variables():
    assert distributed.launch_settings({}, {}) == Launch()
    assert distributed.launch_settings({"processes": 4}, {}).world == 4
    two = distributed.launch_settings({"processes": 8, "nodes": 2}, {**ENV, "MASTER_PORT": "29600"})
    assert (two.world, two.node_rank, two.master_addr, two.master_port) == (16, 1, "10.0.0.1", 29600)
    assert distributed.launch_settings({"nodes": 2}, ENV).master_port == 29500


@pytest.mark.parametrize("runtime, environ, message", [
    ({"nodes": 2}, {"NODE_RANK": "0"}, "runtime.nodes 2 needs MASTER_ADDR set on every node"),
    ({"nodes": 2}, {}, "needs MASTER_ADDR and NODE_RANK set on every node"),
    ({"nodes": 2}, {**ENV, "NODE_RANK": "2"}, "NODE_RANK 2 is not one of 0..1"),
    ({"nodes": 2, "fsdp": {}}, ENV, "runtime.fsdp over several nodes is not supported yet"),
    ({}, {"WORLD_SIZE": "2"}, "engine was itself started on 2 processes"),
])
def test_settings_that_cannot_work_are_clear(runtime, environ, message):
    with pytest.raises(StageError, match=message):
        distributed.launch_settings(runtime, environ)


def test_the_effective_batch_is_the_specs_on_any_number_of_processes():
    assert distributed.per_rank_share(4, 2) == 2
    with pytest.raises(StageError, match=r"effective batch 6 .* does not split evenly over 4 processes; run on 1, 2, 3, 6"):
        distributed.per_rank_share(6, 4)
    # a rank's share below the spec's batch_size: the largest divisor of the share below it
    assert speed.pick_micro_batch(2, "auto", 4, "cpu", None, 2) == (2, 1)
    assert speed.pick_micro_batch(8, "auto", 4, "cpu", None, 2) == (4, 2)
    assert speed.pick_micro_batch(6, "auto", 4, "cpu", None, 2) == (3, 2)
    with pytest.raises(StageError, match="does not divide each process's share 6 of the effective batch"):
        speed.pick_micro_batch(6, 4, 4, "cpu", None, 2)
    assert distributed.eval_batch(4, 2) == 2 and distributed.eval_batch(4, 8) == 1


def test_fsdp_settings_become_trainer_arguments():
    assert distributed.fsdp_arguments(None) == {}
    assert distributed.fsdp_arguments({}) == {"fsdp": True, "fsdp_config": {
        "version": 2, "reshard_after_forward": True, "cpu_offload": False, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP"}}
    config = distributed.fsdp_arguments({"sharding": "grad-op", "wrap": "size", "min_params": 1000, "cpu_offload": True})
    assert config["fsdp_config"] == {"version": 2, "reshard_after_forward": False, "cpu_offload": True,
                                     "auto_wrap_policy": "SIZE_BASED_WRAP", "min_num_params": 1000}
    named = distributed.fsdp_arguments({"wrap": ("LlamaDecoderLayer",)})["fsdp_config"]
    assert named["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]


def test_the_launch_command():
    one = launcher.command(Launch(processes=2), Path("/w/context.json"))
    assert one[1:] == ["-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
                       "--max-restarts", "0", "-m", "engine.training.worker", "/w/context.json"]
    two = launcher.command(Launch(4, 2, 1, "10.0.0.1", 29600), Path("c.json"))
    assert " ".join(two[3:13]) == "--nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29600 --nproc-per-node 4"


TORCHRUN_SUMMARY = """\
Failures:
[1]:
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 16211)  (SIGTERM)
-------------------------------------------------------
Root Cause (first observed failure):
[0]:
  rank      : 1 (local_rank: 1)
  exitcode  : {code} (pid: 16212)
"""


@pytest.mark.parametrize("code, own_error, expected", [
    ("-9", None, "rank 1 of 2 failed: killed by signal 9; nothing was committed; every rank's output is in"),
    ("3", None, "rank 1 of 2 failed: exited with code 3;"),
    ("1", "loss became nan at step 4; lower train.learning_rate", "rank 1 of 2 failed: loss became nan at step 4;"),
])
def test_a_failure_names_the_rank_torchrun_saw_fail_first(tmp_path, code, own_error, expected):
    (tmp_path / launcher.LOG).write_text("Traceback ...\n" + TORCHRUN_SUMMARY.replace("{code}", code))
    (tmp_path / "rank-0.error").write_text("RuntimeError: Connection reset by peer")  # a consequence
    if own_error:
        (tmp_path / "rank-1.error").write_text(own_error)
    assert launcher.failure(tmp_path, 1, Launch(processes=2)).startswith(expected)


def test_the_process_count_is_never_in_a_key(scenes_project, capsys):
    (scenes_project / "spec.yaml").write_text(spec_text("  path: tiny-model"))
    assert main(["run", "spec.yaml", "--until", "data"]) == 0  # the data key needs the tokenizer's digest
    keys = []
    for extra in ([], ["--set", "runtime.processes=2"], ["--set", "runtime.processes=8", "--set", "runtime.fsdp={}"],
                  ["--set", "runtime.nodes=4", "--set", "runtime.processes=2"]):
        assert main(["plan", "spec.yaml", "--json", *extra]) == 0
        keys.append({s["stage"]: s["key"] for s in json.loads(capsys.readouterr().out)})
    assert keys[0]["train"] and all(k == keys[0] for k in keys)


# -- through engine run, on the CPU ----------------------------------------------------------------

@pytest.fixture
def project(scenes_project):
    """The tiny model without dropout: the only difference left between 1 and 2 processes is the
    order of floating-point sums (with dropout each rank draws its own masks)."""
    config = scenes_project / "tiny-model" / "config.json"
    values = json.loads(config.read_text())
    values.update({name: 0.0 for name in values if name.endswith("pdrop")})
    config.write_text(json.dumps(values))
    return scenes_project


def train_entry(store: Path) -> dict:
    for manifest in (store / "store").rglob("manifest.json"):
        entry = json.loads(manifest.read_text())
        if entry["node"] == "train":
            return {**entry, "path": manifest.parent}
    raise AssertionError(f"no train entry in {store}")


@pytest.mark.slow
def test_two_processes_train_like_one_through_the_cli(project, tmp_path, monkeypatch, capsys):
    (project / "spec.yaml").write_text(spec_text("  path: tiny-model"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    one = train_entry(tmp_path / "store")
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "two"))
    capsys.readouterr()
    assert main(["run", "spec.yaml", "--until", "train", "--set", "runtime.processes=2"]) == 0
    err = capsys.readouterr().err
    assert "training on 2 processes" in err and "effective batch 4 (2 micro-batch x 1 accumulation x 2 process(es), DDP)" in err
    assert "validation loss" in err  # rank 0's log lines reach the engine's reporter
    two = train_entry(tmp_path / "two")
    assert two["key"] == one["key"]
    facts = two["result"]["facts"]
    assert (facts["processes"], facts["nodes"], facts["strategy"], facts["effective_batch"]) == (2, 1, "ddp", 4)
    assert two["result"]["metrics"]["processes"] == 2
    # measured: the same losses to 1e-6 (no dropout, no epoch end within 6 steps); 1e-4 is the bound
    for name in ("final_loss", "eval_loss", "train_loss"):
        assert two["result"]["metrics"][name] == pytest.approx(one["result"]["metrics"][name], abs=1e-4)
    assert (two["path"] / "out" / "model" / "model.safetensors").is_file()
    assert not list((tmp_path / "two" / "work").glob("*"))  # the work dir goes with the commit
    assert main(["show", "spec.yaml", "--set", "runtime.processes=2"]) == 0
    assert "processes 2" in capsys.readouterr().out


@pytest.mark.slow
def test_a_rank_that_dies_fails_the_stage_and_commits_nothing(project, tmp_path, monkeypatch, capsys):
    (project / "spec.yaml").write_text(spec_text("  path: tiny-model"))
    monkeypatch.setenv("ENGINE_FAULT", "train-step:rank-1:kill")  # rank 1 SIGKILLs itself after its first step
    assert main(["run", "spec.yaml", "--set", "runtime.processes=2"]) == 1
    err = capsys.readouterr().err
    assert "rank 1 of 2 failed: killed by signal 9; nothing was committed" in err
    assert "skipped" in err  # evaluate and generate depend on it
    nodes = sorted(json.loads(m.read_text())["node"] for m in (tmp_path / "store" / "store").rglob("manifest.json"))
    assert nodes == ["data", "model"]
    assert not list((tmp_path / "store" / "tmp").glob("*"))
    assert not (project / "spec.lock.json").exists()


@pytest.mark.slow
def test_sigterm_stops_every_rank_at_one_checkpoint_and_a_rerun_resumes(project, tmp_path):
    from engine.training.checkpoints import checkpoint_problem

    text = spec_text("  path: tiny-model").replace("max_steps: 6", "max_steps: 120").replace("save_every: 3", "save_every: 4")
    (project / "spec.yaml").write_text(text.replace("eval_every: 3", "eval_every: 1000"))
    env = {**os.environ, "ENGINE_STORE": str(tmp_path / "store")}
    command = [sys.executable, "-m", "engine", "run", "spec.yaml", "--until", "train", "--set", "runtime.processes=2"]
    proc = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "store" / "work").glob("*/checkpoints/checkpoint-*/ENGINE_COMPLETE")):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"training ended before its first checkpoint: {proc.communicate()[1]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # to the engine alone, as a scheduler or `kill` would
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM at step" in err and "Traceback" not in err
    step = int(err.split("stopped by SIGTERM at step ")[1].split(";")[0])
    [checkpoint] = (tmp_path / "store" / "work").glob(f"*/checkpoints/checkpoint-{step}")
    assert checkpoint_problem(checkpoint) is None
    listed = json.loads((checkpoint / "ENGINE_COMPLETE").read_text())["files"]
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= set(listed)  # the manifest waited for both ranks
    ranks = subprocess.run(["pgrep", "-f", str(tmp_path / "store" / "work")], capture_output=True, text=True).stdout
    assert ranks == ""  # no rank outlives the engine (their command line names the work dir)

    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming from checkpoint-{step}" in done.stderr


def test_the_step_loss_adds_token_shares_and_averages_means():
    """With `num_items_in_batch` each micro-batch's loss is its share of the step's token mean (the
    step's loss is their sum); without it, each is its own mean (the step's loss is their mean)."""
    import torch

    from engine.training.callbacks import LossGuard

    class Fake(torch.nn.Module):
        def forward(self, value, num_items_in_batch=None):
            return {"loss": torch.tensor(value)}

    model = Fake()
    guard = LossGuard(model)
    for value in (1.5, 2.5):  # two micro-batches of one step, each its share of the token sum
        model(value, num_items_in_batch=10)
    guard.on_step_end(None, None, None)
    assert guard.last_loss == 4.0
    for value in (1.5, 2.5):
        model(value)
    guard.on_step_end(None, None, None)
    assert guard.last_loss == 2.0
