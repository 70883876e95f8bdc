"""`engine generate`: try a model of a spec on a prompt of your own, streamed as it is sampled.

The model comes from the store as the spec describes it today: the stage must be cached under
its key (a stage that would run says what to run first). Nothing is written: no record, no entry.
The sampling settings are the spec's `generate` section (with `--set` on top), its
`generate.constrain` included unless `constrain=False` (`--no-constrain`), so what you try is
what `engine run` samples:

    SPEC + --set ──plan──► stage cached? ──► its entry (+ the base model an adapter loads onto)
        ──load──► model ──sample(prompt, seeded)──► text, streamed to `on_text`
"""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.errors import UsageError

MODEL_KINDS = ("train", "model")  # stages whose output holds a model
SCORING_KINDS = ("evaluate", "generate")  # stages that load one: their `weights` input names it
DEFAULTS = {"max_new_tokens": 200, "temperature": 0.8, "top_p": 0.95, "top_k": 50, "repetition_penalty": 1.0}


@dataclass(frozen=True)
class Sampled:
    stage: str  # the stage whose model wrote the text
    key: str
    prompt: str
    text: str  # the continuation alone
    tokens: int
    seconds: float


def generate(spec_path: str | Path, prompt: str, stage: str = "train", *, overrides: list[str] | tuple[str, ...] = (),
             store: str | Path | None = None, on_text: Callable[[str], None] | None = None,
             max_new_tokens: int | None = None, constrain: bool = True) -> Sampled:
    """Sample one continuation of `prompt` from `stage`'s model (`train` by default; `model`, or
    `evaluate[baseline]`, for the model before fine-tuning), streaming text to `on_text`; under the
    spec's `generate.constrain` unless `constrain` is False."""
    from engine.app.running import plan

    p = plan(spec_path, overrides, store=store)
    stage = _model_stage(p.graph, stage)
    step = next(s for s in p.steps if s.node.name == stage)
    if step.entry is None:
        run = f"engine run {shlex.quote(str(spec_path))} --until {shlex.quote(stage)}" + "".join(
            f" --set {shlex.quote(o)}" for o in p.overrides)
        raise UsageError(f"{stage} of {spec_path} is not in the store ({p.why(step)}); run `{run}` first")
    node = p.graph.nodes[stage]
    base = stage if node.kind == "model" else node.inputs["model"]
    base_key = next(s.key for s in p.steps if s.node.name == base)
    settings = {**DEFAULTS, **(p.spec.get("generate") or {})}
    if max_new_tokens is not None:
        settings["max_new_tokens"] = max_new_tokens
    if not constrain:
        settings.pop("constrain", None)
    seed = settings.get("seed", p.spec.get("seed"))
    started = time.perf_counter()
    text, tokens = _sample(p.store.entry_path(step.key) / "out", p.store.entry_path(base_key) / "out", p.spec, prompt,
                           settings, seed, on_text, p.spec.root)
    return Sampled(stage, step.key, prompt, text, tokens, time.perf_counter() - started)


def _model_stage(graph, stage: str) -> str:
    """The stage whose model to load: a model stage itself, or the model an evaluate or generate
    stage scores (`evaluate[baseline]` -> `model`)."""
    nodes = graph.nodes
    if stage in nodes and nodes[stage].kind in SCORING_KINDS:
        stage = nodes[stage].inputs["weights"]
    if stage not in nodes or nodes[stage].kind not in MODEL_KINDS:
        choices = [n for n in graph.order if nodes[n].kind in MODEL_KINDS + SCORING_KINDS]
        raise UsageError(f"--stage {stage}: {'no such stage' if stage not in nodes else 'it holds no model'}; "
                         f"stages with a model: {', '.join(choices)}")
    return stage


def _sample(weights: Path, base: Path, spec, prompt: str, settings: dict, seed: int, on_text,
            root: Path) -> tuple[str, int]:
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    import torch
    from transformers import TextStreamer, set_seed

    from engine.tasks import TASKS
    from engine.training.loading import apply_threads, load_trained, pick_device

    if spec.get("task") != "causal-lm":
        raise UsageError(f"engine generate samples text; this spec's task is {spec.get('task')}")
    runtime = spec.get("runtime")
    device = pick_device(runtime)
    apply_threads(runtime)
    model, tokenizer = load_trained(weights, base, device, TASKS["causal-lm"])

    class Streamer(TextStreamer):  # TextStreamer holds back a partial word or character until it is whole
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if on_text is not None and text:
                on_text(text)

    greedy = settings["temperature"] == 0
    options = {"max_new_tokens": settings["max_new_tokens"], "do_sample": not greedy,
               "repetition_penalty": settings["repetition_penalty"], "pad_token_id": tokenizer.pad_token_id}
    if not greedy:
        options.update(temperature=settings["temperature"], top_p=settings["top_p"], top_k=settings["top_k"] or None)
    if settings.get("constrain") is not None:  # the spec's grammar masks the logits, as in `engine run`
        from engine.constrain import Steering

        steering = Steering(settings["constrain"], root, tokenizer, model.config.vocab_size)
        processor = steering.logits_processor(prompt, settings["max_new_tokens"])
        options.update(logits_processor=processor, eos_token_id=tokenizer.eos_token_id)
    set_seed(seed)
    encoded = tokenizer(prompt, return_tensors="pt").to(device)
    with torch.no_grad():
        output = model.generate(**encoded, streamer=Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True),
                                **options)
    new = [int(t) for t in output[0][encoded["input_ids"].shape[1]:] if int(t) != tokenizer.pad_token_id]
    return tokenizer.decode(new, skip_special_tokens=True), len(new)
