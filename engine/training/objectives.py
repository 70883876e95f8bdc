"""The objectives other than next-token prediction, trained with TRL's trainers.

    objective  reads (data columns)          trainer                     reference model
    dpo        prompt, chosen, rejected      trl.DPOTrainer              the frozen start (see below)
    orpo       prompt, chosen, rejected      trl.experimental ORPO       none
    kto        prompt, completion, label     trl.KTOTrainer              the frozen start
    grpo       prompt                        trl.GRPOTrainer, rewards    the frozen start, when beta > 0

Each trainer is a transformers `Trainer`: it takes the sft run's TrainingArguments keywords
(engine/training/loop.py `trainer_arguments`: schedule, precision, checkpoints, evaluation) in its
TRL config, with the objective's own fields, and the loop's callbacks (progress bar, loss guard,
checkpoint manifests, SIGTERM) as they are; so resuming, stopping and NaN handling work the same.
TRL computes the loss inside `compute_loss`, not in the model's forward, so the loss guard is fed
from there. With `model.lora` the model is already a PEFT model: TRL then takes the reference
log-probabilities from a frozen copy of the fresh adapter (zero: the base model itself), a few MB,
never a second model; without LoRA it loads a second copy of the starting model (not for orpo,
nor grpo with beta 0). The texts are tokenized by TRL, in memory (the data stage's entry is never
written to).
"""
from __future__ import annotations

import json
import os

COLUMNS = {"dpo": ("prompt", "chosen", "rejected"), "orpo": ("prompt", "chosen", "rejected"),
           "kto": ("prompt", "completion", "label"), "grpo": ("prompt",)}


def objective_of(train: dict) -> str:
    """The run's objective; absent from an sft run's params (its key leaves the default out)."""
    return train.get("objective", "sft")


def rollouts(train: dict) -> int:
    """Examples one prompt makes in a batch: grpo samples `generations` answers to each."""
    return train["generations"] if objective_of(train) == "grpo" else 1


def trainer_factory(ctx, model, tokenizer, dataset):
    """A function (TrainingArguments keywords, callbacks, loss guard) -> the objective's TRL trainer."""
    train = ctx.params["train"]
    max_length = json.loads((ctx.inputs["data"] / "info.json").read_text())["max_length"]  # data.max_length
    objective = objective_of(train)
    columns = list(COLUMNS[objective])
    train_split = dataset["train"].select_columns(columns)
    validation = dataset["validation"].select_columns(columns) if "validation" in dataset else None

    def build(arguments: dict, callbacks: list, guard):
        trainer_class, config_class = _classes(objective)
        config = config_class(**{**arguments, "gradient_checkpointing": False, **_own_arguments(train, max_length)})
        extra = {}
        if objective == "grpo":
            from engine.training.rewards import reward_functions

            extra["reward_funcs"] = reward_functions(train["rewards"], ctx, tokenizer)
        trainer = trainer_class(model=model, args=config, train_dataset=train_split, eval_dataset=validation,
                                processing_class=tokenizer, callbacks=callbacks, **extra)
        _feed_guard(trainer, guard)
        return trainer

    return build


def _classes(objective: str):
    """(trainer class, config class), imported only when training with them."""
    if objective == "orpo":
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # ORPO lives in trl.experimental in TRL 1.x
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOTrainer, ORPOConfig
    import trl

    name = objective.upper()
    return getattr(trl, f"{name}Trainer"), getattr(trl, f"{name}Config")


def _own_arguments(train: dict, max_length: int) -> dict:
    """The objective's fields of its TRL config, from the spec."""
    if objective_of(train) != "grpo":
        return {"beta": train["beta"], "max_length": max_length}
    weights = [part["weight"] for part in train["rewards"]]
    generations = train["generations"]
    return {"beta": train["beta"], "num_generations": generations, "max_completion_length": train["max_new_tokens"],
            "temperature": train["temperature"], "reward_weights": weights, "log_completions": False,
            "per_device_eval_batch_size": generations}  # an evaluation batch holds whole prompt groups


def _feed_guard(trainer, guard) -> None:
    """Hand the loss of every training micro-batch to the loss guard (NaN stop, the record's losses)."""
    guard.remove()  # the model's forward computes no loss here (or, given labels, another one)
    compute_loss = trainer.compute_loss

    def guarded(model, inputs, *args, **kwargs):
        result = compute_loss(model, inputs, *args, **kwargs)
        if model.training:
            guard.note(result[0] if isinstance(result, tuple) else result)
        return result

    trainer.compute_loss = guarded


def summary(train: dict, history: list[dict]) -> dict:
    """The objective's own headline numbers from the log history: for dpo, orpo and kto the last
    logged implicit rewards (`rewards_chosen`, `rewards_margins`, ...); for grpo the mean reward at
    the first and the last logged step and each part's last mean (`reward_<part>`)."""
    logged = [entry for entry in history if "loss" in entry]  # the training steps' logs, not evaluations
    if not logged:
        return {}
    last = logged[-1]
    if objective_of(train) != "grpo":
        return {"rewards_" + name.split("/")[1]: value for name, value in last.items()
                if name.startswith("rewards/") and name.count("/") == 1}
    out = {"reward_first": logged[0].get("reward"), "reward": last.get("reward")}
    out.update({"reward_" + name.split("/")[1]: value for name, value in last.items()
                if name.startswith("rewards/") and name.endswith("/mean")})
    return {name: value for name, value in out.items() if value is not None}
