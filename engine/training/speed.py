"""How fast the train stage runs, never what it computes: kernels, the micro-batch, compile, and
the numbers a GPU user reads (tokens/s, FLOPs per token, MFU, peak memory).

    train.kernels      auto | liger | none    keyed: fused kernels change the weights' last bits
    runtime.micro_batch  auto | N              not keyed: only splits the effective batch
    runtime.compile      true | false          not keyed

The effective batch (train.batch_size x train.gradient_accumulation) is what a spec fixes, on
any number of processes; the micro-batch, accumulation and process count that make it up are the
runtime's choice, so the same spec trained with micro-batch 8 x 8 or 64 x 1, on 1 or 8 devices,
has one key (the numbers agree to rounding: see README, "Training on several devices").
"""
from __future__ import annotations

import importlib.util
import re
from typing import Callable

from engine.errors import StageError

# Dense bf16 peak FLOP/s by device name (vendors' data sheets), most specific first; others: MFU "unknown".
PEAK_BF16 = ((r"H200", 989e12), (r"H100 PCIe", 756e12), (r"H100", 989e12), (r"A100", 312e12), (r"L40S", 362e12),
             (r"A10G", 125e12), (r"\bL4\b", 121e12), (r"RTX 4090", 165e12), (r"RTX 3090", 71e12))


def resolve_kernels(wanted: str | None, device: str) -> str:
    """`liger` or `none` for this machine; a clear error when `liger` cannot run here."""
    installed = importlib.util.find_spec("liger_kernel") is not None
    if wanted in (None, "auto"):
        return "liger" if device == "cuda" and installed else "none"
    if wanted == "liger" and device != "cuda":
        raise StageError(f"train.kernels: liger runs on CUDA only, and this run is on {device}; "
                         f"set train.kernels: auto (or none)")
    if wanted == "liger" and not installed:
        raise StageError("train.kernels: liger needs the liger-kernel package: pip install 'engine[gpu]' "
                         "(or pip install liger-kernel); or set train.kernels: auto")
    return wanted


def divisors_desc(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def pick_micro_batch(effective: int, wanted, spec_batch: int, device: str,
                     fits: Callable[[int], bool] | None, processes: int = 1) -> tuple[int, int]:
    """(micro-batch, accumulation) whose product is `effective`: this process's share of the
    spec's effective batch (all of it on one process).

    `wanted` is runtime.micro_batch: a number (must divide), or `auto`: on CUDA the largest
    divisor of `effective` for which `fits(m)` is true (a probe), elsewhere the spec's batch_size
    (or, when a process's share is smaller, the largest divisor of the share below it).
    """
    if isinstance(wanted, int):
        if effective % wanted:
            what = (f"the effective batch {effective} (train.batch_size x train.gradient_accumulation)" if processes == 1
                    else f"each process's share {effective} of the effective batch (train.batch_size x "
                         f"train.gradient_accumulation / {processes} processes)")
            raise StageError(f"runtime.micro_batch {wanted} does not divide {what}; pick one of {divisors_desc(effective)}")
        return wanted, effective // wanted
    if device != "cuda" or fits is None:
        size = next(d for d in divisors_desc(effective) if d <= spec_batch)
        return size, effective // size
    for size in divisors_desc(effective):
        if fits(size):
            return size, effective // size
    raise StageError("out of memory with a micro-batch of 1 at this sequence length; lower data.max_length, "
                     "train adapters only (model.lora), or use train.precision bf16")


def cuda_probe(model, seq_len: int, vocab_size: int, precision: str, labelled: bool) -> Callable[[int], bool]:
    """A forward and backward pass at micro-batch m and the real sequence length; False on OOM.
    (Optimizer state is not allocated by the probe: a full fine-tune that fits only just may
    still run out at its first step, and the out-of-memory advice then names the split.)"""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def fits(m: int) -> bool:
        try:
            ids = torch.randint(0, vocab_size, (m, seq_len), device="cuda")
            labels = torch.zeros(m, dtype=torch.long, device="cuda") if labelled else ids  # one class per row
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()  # the record's peak memory is training's, not the probe's

    return fits


def flops_per_token(total_params: int, trainable_params: int) -> float:
    """Training FLOPs per token: 6N for a full fine-tune (forward 2N, backward 4N); with a frozen
    base (LoRA, freeze_base) the weight gradients of the frozen part are skipped: 4N + 2 x trainable."""
    if trainable_params >= total_params:
        return 6.0 * total_params
    return 4.0 * total_params + 2.0 * trainable_params


def device_facts(device: str, tokens_per_s: float, flops: float) -> dict:
    """MFU against the device's peak (None where unknown) and peak memory, for the log and the record."""
    facts: dict = {"flops_per_token": round(flops), "mfu": None}
    if device == "cuda":
        import torch

        name = torch.cuda.get_device_name()
        peak = next((v for pattern, v in PEAK_BF16 if re.search(pattern, name)), None)
        facts.update({"gpu": name, "peak_memory_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                      "peak_memory_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2)})
        if peak:
            facts["mfu"] = round(tokens_per_s * flops / peak, 4)
    else:
        import resource

        facts["peak_memory_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return facts


def describe(facts: dict) -> str:
    mfu = f"MFU {facts['mfu']:.3f}" if facts.get("mfu") is not None else "MFU unknown (no peak for this device)"
    memory = (f"peak memory {facts['peak_memory_allocated_gib']} GiB allocated, {facts['peak_memory_reserved_gib']} reserved"
              if "peak_memory_allocated_gib" in facts else f"peak RSS {facts.get('peak_memory_rss_gib')} GiB")
    return f"{facts['flops_per_token'] / 1e9:.2f} GFLOP/token, {mfu}, {memory}"


def is_compile_error(exc: BaseException) -> bool:
    """Whether an exception came from torch.compile (dynamo or inductor), not from training."""
    module = type(exc).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor")) or "BackendCompilerFailed" in type(exc).__name__


TRACKER_PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "mlflow": ("mlflow",), "wandb": ("wandb",)}


def prepare_trackers(wanted: list[str], logs) -> list[str]:
    """runtime.report_to for the Trainer: each tracker installed (else a clear error), writing
    under `logs` unless its own environment variable says where."""
    import os

    for name in wanted:
        if not any(importlib.util.find_spec(package) for package in TRACKER_PACKAGES[name]):
            raise StageError(f"runtime.report_to: {name} is not installed: pip install {TRACKER_PACKAGES[name][0]}; "
                             f"or remove it from runtime.report_to")
    if wanted:
        logs.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(logs / "tensorboard"))
        os.environ.setdefault("MLFLOW_TRACKING_URI", (logs / "mlruns").as_uri())
        os.environ.setdefault("WANDB_DIR", str(logs))
    return list(wanted)
