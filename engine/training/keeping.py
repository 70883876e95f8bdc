"""Which weights the train stage outputs: the last step's (the default), the best complete checkpoint
by validation loss (`train.keep: best`), or the uniform average of the last K complete checkpoints
(`train.average: {last: K}`, a model soup; with LoRA, of the adapter weights).

Only checkpoints the schedule places count: for `average`, those at multiples of the save interval
and at the last step; for `best`, those at an evaluation. A checkpoint SIGTERM saved between them
is for resuming only, so a run interrupted and resumed outputs what an uninterrupted one does. The
Trainer's own rotation is off for these runs; `Pruner` keeps what the output needs (the best, or
the last K) and the newest, for resuming, and removes the rest as training goes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.errors import StageError
from engine.training.checkpoints import checkpoint_problem

ADAPTER = "adapter_model.safetensors"
FULL = "model.safetensors"
FULL_INDEX = "model.safetensors.index.json"


def mode(train: dict) -> str:
    """`last`, `best` or `average`."""
    return "average" if train.get("average") else train.get("keep", "last")


def arguments(train: dict, max_steps: int, has_validation: bool, world: int) -> dict:
    """TrainingArguments keywords for `best` and `average` (none for `last`); what cannot work, as
    a StageError before any step is trained."""
    chosen = mode(train)
    if chosen == "last":
        return {}
    if world > 1:
        raise StageError(f"train.{'keep: best' if chosen == 'best' else 'average'} is not supported on several processes "
                         f"yet; leave runtime.processes and runtime.nodes out to train on one")
    if chosen == "best":
        if not has_validation:  # the data stage leaves empty splits out
            raise StageError("train.keep: best needs a validation split; set data.split.validation > 0")
        return {"save_steps": train["eval_every"], "save_total_limit": None}
    every, last = train["save_every"], train["average"]["last"]
    saved = max_steps // every + (1 if max_steps % every else 0)
    if saved < last:
        most = max(1, (max_steps - 1) // (last - 1)) if last > 1 else max_steps
        raise StageError(f"train.average.last is {last}, but this run saves {saved} checkpoint{'s' if saved != 1 else ''} "
                         f"(every train.save_every={every} of {max_steps} steps, and the last); set train.save_every to "
                         f"at most {most}, or average fewer")
    return {"save_total_limit": None}


def placed(train: dict, step: int, max_steps: int, save_steps: int, evaluated: dict) -> bool:
    """Whether the checkpoint of `step` is one the schedule places (see module docstring)."""
    if mode(train) == "best":
        return step in evaluated
    return step % save_steps == 0 or step == max_steps


def evaluations(log_history: list[dict]) -> dict[int, float]:
    """{step: validation loss} of every evaluation so far (a resumed run's history includes the earlier ones)."""
    return {int(h["step"]): float(h["eval_loss"]) for h in log_history if "eval_loss" in h and "step" in h}


def numbered(folder: Path) -> dict[int, Path]:
    """{step: checkpoint folder} of the checkpoints in `folder`."""
    found = {}
    for path in folder.glob("checkpoint-*"):
        suffix = path.name.removeprefix("checkpoint-")
        if path.is_dir() and suffix.isdigit():
            found[int(suffix)] = path
    return found


def needed(train: dict, steps: list[int], evaluated: dict) -> list[int]:
    """Of the placed checkpoints' steps, those the output is made of: the best (the earliest of equal
    losses), or the last K."""
    if not steps:
        return []
    if mode(train) == "best":
        return [min(steps, key=lambda s: (evaluated[s], s))]
    return sorted(steps)[-train["average"]["last"]:]


def choose(ctx, trainer, max_steps: int, save_steps: int, lora: bool) -> dict | None:
    """Load the weights the spec asks for into the trainer's model; the facts that say which (None
    for `last`, which is what the model already holds)."""
    train = ctx.params["train"]
    chosen = mode(train)
    if chosen == "last":
        return None
    evaluated = evaluations(trainer.state.log_history)
    complete = {step: path for step, path in numbered(Path(trainer.args.output_dir)).items()
                if checkpoint_problem(path) is None and placed(train, step, max_steps, save_steps, evaluated)}
    steps = needed(train, sorted(complete), evaluated)
    if chosen == "average" and len(steps) < train["average"]["last"]:
        raise StageError(f"train.average.last is {train['average']['last']}, but only {len(steps)} complete checkpoint"
                         f"{'s were' if len(steps) != 1 else ' was'} saved (training stopped early?); average fewer, or "
                         f"lower train.save_every")
    if not steps:
        raise StageError("train.keep: best found no complete checkpoint with a validation loss; check train.eval_every")
    states = [weights(complete[step], lora) for step in steps]
    load(trainer.model, mean(states) if len(states) > 1 else states[0], lora)
    used = [{"checkpoint": complete[s].name, "step": s, "eval_loss": evaluated.get(s)} for s in steps]
    if chosen == "best":
        ctx.log(f"train.keep: best: {used[0]['checkpoint']} (validation loss {used[0]['eval_loss']:.4f}) of "
                f"{len(evaluated)} evaluated")
        return {"kept": {**used[0], "evaluated": [{"step": s, "eval_loss": v} for s, v in sorted(evaluated.items())]}}
    ctx.log(f"train.average: the mean of {', '.join(u['checkpoint'] for u in used)}")
    return {"averaged": used}


def weights(folder: Path, lora: bool) -> dict:
    """The tensors a checkpoint saved: the adapter's with LoRA, else the model's (one file or shards)."""
    from safetensors.torch import load_file

    if lora:
        return load_file(folder / ADAPTER)
    if (folder / FULL).is_file():
        return load_file(folder / FULL)
    shards = sorted(set(json.loads((folder / FULL_INDEX).read_text(encoding="utf-8"))["weight_map"].values()))
    state: dict = {}
    for shard in shards:
        state.update(load_file(folder / shard))
    return state


def mean(states: list[dict]) -> dict:
    """The element-wise mean of several state dicts with the same names, in each tensor's own dtype."""
    import torch

    return {name: torch.stack([s[name].float() for s in states]).mean(0).to(states[0][name].dtype) for name in states[0]}


def load(model, state: dict, lora: bool) -> None:
    if lora:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, state)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
    else:
        unexpected = model.load_state_dict(state, strict=False).unexpected_keys
    if unexpected:
        raise StageError(f"a checkpoint's weights do not fit the model ({', '.join(unexpected[:3])}...)")


def pruner(train: dict, max_steps: int, save_steps: int):
    """A Trainer callback that removes the checkpoints neither the output nor a resume needs."""
    from transformers import TrainerCallback

    class Pruner(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if not args.should_save:
                return
            evaluated = evaluations(state.log_history)
            found = numbered(Path(args.output_dir))
            steps = [s for s, p in found.items() if placed(train, s, max_steps, save_steps, evaluated)
                     and checkpoint_problem(p) is None]
            keep = set(needed(train, steps, evaluated)) | {max(found, default=0)}
            for step, path in found.items():
                if step not in keep:
                    shutil.rmtree(path, ignore_errors=True)

    return Pruner()
