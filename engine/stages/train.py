"""Train stage: the Hugging Face `Trainer`, configured from the spec, resumable, seeded.

Checkpoints go to the store's work dir named by this stage's key, so an interrupted run of the
same key resumes from its newest complete checkpoint, and a different key never sees them. A
checkpoint is complete when every file matches the manifest written into it last. SIGTERM ends
the step in progress with a checkpoint; a NaN or infinite loss, or running out of memory, fails
the stage naming the fields to change. A failed stage caches nothing. With runtime.processes or
runtime.nodes above 1 the engine starts the ranks (engine/training/launcher.py), each runs the same
training (engine/training/loop.py), and the engine commits what they wrote. `train.objective`
other than sft trains with TRL (engine/training/objectives.py), on one process.
"""
from __future__ import annotations

from engine.errors import StageError
from engine.training import distributed
from engine.training.checkpoints import resumable_checkpoint
from engine.training.distributed import Ranks

VERSION = 1
LIBRARIES = ("torch", "transformers", "peft", "accelerate")
ROLES = ("model", "data", "pairs")  # input roles a pipeline may bind (engine/pipeline.py); pairs: the pairs stage's
PRODUCES = ("model", "adapter", "log_history.json")  # what out/ holds; the first that exists is what `engine show` points at


# Fields of `train` that only some objectives read; every objective reads the others. An sft run
# leaves all of these out of its key (train.objective at its default included), so its key is the
# one it had before the other objectives existed.
OBJECTIVE_FIELDS = {
    "objective": ("dpo", "orpo", "kto", "grpo"),
    "beta": ("dpo", "orpo", "kto", "grpo"),
    "rewards": ("grpo",), "generations": ("grpo",), "max_new_tokens": ("grpo",), "temperature": ("grpo",),
}


def reads(spec) -> tuple[str, ...]:
    objective = spec.get("train.objective", "sft")
    fields = tuple(f"train.{name}" for name in spec.get("train") if objective in OBJECTIVE_FIELDS.get(name, (objective,))
                   and not (name == "keep" and spec.get("train.keep") == "last"))  # the default: the key of before `keep`
    return ("task", "seed") + fields + ("model.lora",)  # the label set arrives with the data stage's key


def libraries(spec) -> tuple[str, ...]:
    """LIBRARIES, and TRL where the objective trains with it."""
    return LIBRARIES + (("trl",) if spec.get("train.objective", "sft") != "sft" else ())


# Read by `run`, left out of the key: the weights are the same whatever they are set to.
IGNORES = {
    "train.log_every": "how often the loss is logged; the weights do not depend on it",
    "train.save_every": "how often a checkpoint is saved for resuming; resuming gives the same weights",
}


def ignores(spec) -> dict:
    """IGNORES, but save_every where train.average averages the checkpoints it places."""
    return {k: v for k, v in IGNORES.items() if not (k == "train.save_every" and spec.has("train.average"))}


def inputs(spec) -> dict:
    """The versions of the checks grpo's rewards run (none otherwise: it reads only upstream outputs)."""
    from engine.training.rewards import checks_in

    names = checks_in(spec.get("train.rewards")) if spec.get("train.objective", "sft") == "grpo" else []
    if not names:
        return {}
    from engine.checks import identity
    from engine.core.payload import Known

    return {f"check {name}": Known(identity(name)) for name in names}


def run(ctx) -> dict:
    """Train here, or on the ranks runtime.processes and runtime.nodes ask for (the same result)."""
    settings = distributed.launch_settings(ctx.runtime)
    objective = ctx.get("train.objective", "sft")  # absent from an sft run's params (see OBJECTIVE_FIELDS)
    if "pairs" in ctx.inputs:  # the pairs stage's preference pairs stand in for the data stage's examples
        ctx.inputs = {**ctx.inputs, "data": ctx.inputs["pairs"]}
    if settings.world > 1 and objective != "sft":
        raise StageError(f"train.objective {objective} is not supported on several processes yet (runtime.processes "
                         f"{settings.processes}, runtime.nodes {settings.nodes}); leave runtime.processes and "
                         f"runtime.nodes out to train on one")
    if settings.world > 1 and (ctx.runtime or {}).get("fsdp") is not None and ctx.get("model.lora"):
        raise StageError("runtime.fsdp with model.lora is not supported yet (the adapters are small: DDP replicates "
                         "them cheaply); leave runtime.fsdp out, or train every weight")
    resume = resumable_checkpoint(ctx.work / "checkpoints", ctx.log)  # chosen once, for every rank
    if settings.world > 1:
        from engine.training import launcher

        return launcher.launch(ctx, settings, resume)
    from engine.training.loop import train

    return train(ctx, Ranks(), resume)
