"""Training on several processes, devices and nodes: the settings and the ranks' shared rules.

    runtime.processes  N per node (default 1)      never keyed: where the run happens, not what
    runtime.nodes      M machines (default 1)      rendezvous: MASTER_ADDR, MASTER_PORT, NODE_RANK
    runtime.fsdp       {sharding, wrap, min_params, cpu_offload}; absent: DDP (every rank a replica)

The effective batch is the spec's (`train.batch_size x train.gradient_accumulation`) on any
number of processes: each rank takes an equal share of it, split into micro-batch x accumulation
(`per_rank_share`), so the same spec on 1 or 8 devices has one key and takes the same optimizer
steps over the same examples. What launches the ranks is engine/training/launcher.py; each rank is
engine/training/worker.py. Nothing here imports torch until a rank needs it.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from engine.errors import StageError

DEFAULT_PORT = 29500  # torchrun's and accelerate's
FSDP_SHARDING = {"full": True, "grad-op": False}  # -> fsdp_config reshard_after_forward (FSDP2)


@dataclass(frozen=True)
class Launch:
    """How many ranks the train stage runs on and how they meet (from runtime and the environment)."""

    processes: int = 1  # per node
    nodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_PORT

    @property
    def world(self) -> int:
        return self.processes * self.nodes


def launch_settings(runtime: Mapping | None, environ: Mapping[str, str] = os.environ) -> Launch:
    """runtime.processes and runtime.nodes, with the rendezvous of a multi-node run from the
    variables torchrun and accelerate use (MASTER_ADDR, MASTER_PORT, NODE_RANK)."""
    runtime = runtime or {}
    processes, nodes = int(runtime.get("processes", 1)), int(runtime.get("nodes", 1))
    inherited = int(environ.get("WORLD_SIZE", "1") or 1)
    if inherited > 1:  # every rank would run the whole pipeline and race to commit
        raise StageError(f"engine was itself started on {inherited} processes (WORLD_SIZE={inherited}); start it once, "
                         f"with plain `engine run`, and set runtime.processes: it starts the training processes")
    if nodes == 1:
        return Launch(processes=processes)
    missing = [name for name in ("MASTER_ADDR", "NODE_RANK") if not environ.get(name)]
    if missing:
        raise StageError(f"runtime.nodes {nodes} needs {' and '.join(missing)} set on every node (MASTER_ADDR: node 0's "
                         f"address the others reach; NODE_RANK: 0 on that node, 1..{nodes - 1} on the others; "
                         f"MASTER_PORT: a free port, default {DEFAULT_PORT}), e.g. MASTER_ADDR=10.0.0.1 NODE_RANK=0 "
                         f"engine run SPEC")
    try:
        node_rank, port = int(environ["NODE_RANK"]), int(environ.get("MASTER_PORT") or DEFAULT_PORT)
    except ValueError as exc:
        raise StageError(f"NODE_RANK and MASTER_PORT must be whole numbers ({exc})") from exc
    if not 0 <= node_rank < nodes:
        raise StageError(f"NODE_RANK {node_rank} is not one of 0..{nodes - 1} (runtime.nodes {nodes})")
    if runtime.get("fsdp") is not None:
        raise StageError("runtime.fsdp over several nodes is not supported yet: the trained model is gathered on node 0 "
                         "alone, and every node commits its own entry; use DDP across nodes (leave runtime.fsdp out) "
                         "or FSDP on one node")
    return Launch(processes, nodes, node_rank, environ["MASTER_ADDR"], port)


def per_rank_share(effective: int, world: int) -> int:
    """The examples each rank takes of one optimizer step's effective batch."""
    if effective % world:
        fits = [d for d in range(1, effective + 1) if effective % d == 0]
        raise StageError(f"the effective batch {effective} (train.batch_size x train.gradient_accumulation) does not "
                         f"split evenly over {world} processes; run on {', '.join(map(str, fits))} processes, or "
                         f"change train.batch_size or train.gradient_accumulation (that changes the experiment)")
    return effective // world


def fsdp_arguments(fsdp: Mapping | None) -> dict:
    """runtime.fsdp as TrainingArguments (`fsdp`, `fsdp_config`, FSDP2 through accelerate); {} for DDP."""
    if fsdp is None:
        return {}
    config: dict = {"version": 2, "reshard_after_forward": FSDP_SHARDING[fsdp.get("sharding", "full")],
                    "cpu_offload": bool(fsdp.get("cpu_offload", False))}
    wrap = fsdp.get("wrap", "auto")
    if wrap == "size":
        config.update(auto_wrap_policy="SIZE_BASED_WRAP", min_num_params=int(fsdp.get("min_params", 100_000_000)))
    else:  # auto: the model's own `_no_split_modules` (its decoder layers), or the classes named
        config["auto_wrap_policy"] = "TRANSFORMER_BASED_WRAP"
        if wrap != "auto":
            config["transformer_layer_cls_to_wrap"] = list(wrap)
    return {"fsdp": True, "fsdp_config": config}


def eval_batch(batch: int, world: int) -> int:
    """Examples per rank per evaluation batch: the ranks together take the spec's batch (exactly
    when the process count divides train.batch_size), as one process would."""
    return max(1, batch // world)


@functools.cache
def trainer_class():
    """The Trainer on several ranks. Its validation loss weighs each rank's batch by its share of
    the tokens of all ranks (`average_tokens_across_devices`), which is right for training but
    biased at the end of the validation split, where the last ranks' batches are short or repeat
    examples that are then dropped (0.09 on a 14-block split over 2 ranks): evaluation weighs each
    batch by its examples, as on one process."""
    from transformers import Trainer

    class RanksTrainer(Trainer):
        def evaluation_loop(self, *args, **kwargs):
            saved, self.args.average_tokens_across_devices = self.args.average_tokens_across_devices, False
            try:
                return super().evaluation_loop(*args, **kwargs)
            finally:
                self.args.average_tokens_across_devices = saved

    return RanksTrainer


@dataclass(frozen=True)
class Ranks:
    """Where this process is among the training ranks (torchrun's RANK, LOCAL_RANK, WORLD_SIZE...)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "Ranks":
        return cls(int(environ["WORLD_SIZE"]), int(environ["RANK"]), int(environ["LOCAL_RANK"]),
                   int(environ.get("LOCAL_WORLD_SIZE", environ["WORLD_SIZE"])))

    @property
    def nodes(self) -> int:
        return self.world // self.local_world

    @property
    def writes(self) -> bool:
        """Whether this rank writes the stage's output on its node (local rank 0: one per node)."""
        return self.local_rank == 0

    def start(self, device: str) -> None:
        """Join the process group now (gloo on a CPU, nccl on CUDA), before the model is placed,
        so the ranks can agree on choices; the Trainer finds it already joined."""
        if self.world == 1:
            return
        import torch
        import torch.distributed as dist

        if device == "cuda":
            torch.cuda.set_device(self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")

    def finish(self) -> None:
        """Leave the process group once every rank is done with collectives."""
        if self.world == 1:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def reduce(self, values: list[float], op: str = "sum") -> list[float]:
        """`values` combined over every rank (sum, min or max); as given on one process."""
        if self.world == 1:
            return list(values)
        import torch
        import torch.distributed as dist

        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op])
        return tensor.tolist()

    def agree_resume(self, resume: Path | None, log) -> Path | None:
        """The checkpoint every rank resumes from: the same step on every node, or none. Each
        node's engine picked its own newest complete one; a node without the oldest of them
        makes every rank start again at step 0."""
        if self.nodes == 1:
            return resume
        step = int(resume.name.removeprefix("checkpoint-")) if resume else -1
        low, high = self.reduce([step], "min")[0], self.reduce([step], "max")[0]
        if low == high:
            return resume
        mine = resume.parent / f"checkpoint-{int(low)}" if resume and low >= 0 else None
        from engine.training.checkpoints import checkpoint_problem

        have = 1.0 if mine is not None and checkpoint_problem(mine) is None else 0.0
        if self.reduce([have], "min")[0] == 1.0:
            log(f"the nodes' newest complete checkpoints differ (steps {int(low)} to {int(high)}): resuming from "
                f"checkpoint-{int(low)}, which every node has")
            return mine
        log("the nodes have no complete checkpoint in common: training starts at step 0")
        return None
