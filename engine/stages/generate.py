"""Generate stage: seeded samples from the trained model, written to samples.jsonl.

Seeded per prompt, so the cached samples are exactly what a rerun would produce. With
`generate.checks`, the checks judge the samples and, as `metrics.reference`, held-out real items
of the data (engine/checks/reference.py); with `generate.select`, more candidates are sampled and
the best by a check's metric kept (engine/checks/selection.py, candidates.jsonl). With
`generate.constrain`, a grammar masks the logits of every token that would leave it (engine/constrain).
"""
from __future__ import annotations

import json

VERSION = 2  # 2: metrics.reference, the checks on held-out real items
LIBRARIES = ("torch", "transformers", "peft")
ROLES = ("weights", "model", "data", "copy-index")  # input roles a pipeline may bind (engine/pipeline.py)
PRODUCES = ("samples.jsonl", "metrics.json")  # what out/ holds; the first that exists is what `engine show` points at


def reads(spec) -> tuple[str, ...]:
    fields = ("task", "generate.prompts", "generate.samples_per_prompt", "generate.max_new_tokens", "generate.temperature",
              "generate.top_p", "generate.top_k", "generate.repetition_penalty", "generate.seed", "generate.checks",
              "generate.copy_span", "generate.chat")
    if spec.get("generate.chat"):
        fields += ("data.chat_template",)
    if any(isinstance(prompt, dict) for prompt in spec.get("generate.prompts")):
        fields += ("data.prompt",)
    if spec.has("generate.select"):
        fields += ("generate.select",)
    if spec.has("generate.constrain"):
        fields += ("generate.constrain",)
    return fields + (() if spec.has("generate.seed") else ("seed",))  # `baseline` only adds a node


def inputs(spec) -> dict:
    """The checks' own versions (changing how a check scores samples reruns generation's checks), and
    a constraint's grammar file, built-in grammar and library version."""
    from engine.checks import identity
    from engine.constrain.forms import key_inputs
    from engine.core.payload import Known

    return {**{f"check {name}": Known(identity(name)) for name in spec.get("generate.checks")},
            **key_inputs(spec)}


def run(ctx) -> dict:
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    import torch
    from transformers import set_seed

    from engine.training.loading import apply_threads, load_trained, pick_device
    from engine.tasks import TASKS

    params = ctx.params["generate"]
    seed = params.get("seed", ctx.seed)
    device = pick_device(ctx.runtime)
    apply_threads(ctx.runtime)
    # `weights`: the fine-tuned output, or for `generate[baseline]` the model before fine-tuning
    model, tokenizer = load_trained(ctx.inputs["weights"], ctx.inputs["model"], device, TASKS[ctx.params["task"]])
    greedy = params["temperature"] == 0
    settings = {"max_new_tokens": params["max_new_tokens"], "do_sample": not greedy,
                "repetition_penalty": params["repetition_penalty"], "pad_token_id": tokenizer.pad_token_id}
    if not greedy:
        settings.update(temperature=params["temperature"], top_p=params["top_p"], top_k=params["top_k"] or None)
    select = params.get("select")
    count = select["candidates"] if select else params["samples_per_prompt"]
    prompts = prompt_texts(params["prompts"], ctx.params.get("data", {}), tokenizer, params.get("chat", False))
    steering = None
    if params.get("constrain") is not None:  # a grammar masks the logits (engine/constrain)
        from engine.constrain import Steering

        steering = Steering(params["constrain"], ctx.spec_root, tokenizer, model.config.vocab_size)
    bar = ctx.bar(len(prompts) * count, "generating")
    rows = []
    with torch.no_grad():
        for number, prompt in enumerate(prompts):
            set_seed(seed + number)
            # a chat prompt holds the template's special tokens as text, and a record prompt is tokenized as
            # data.prompt was in training (no special tokens); a plain text prompt keeps the tokenizer's own
            asked = params["prompts"][number]  # a record prompt's fields also go with its samples, for the checks
            plain = not params.get("chat") and not isinstance(asked, dict)
            encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=plain).to(device)
            steer = {}
            if steering:  # a whole document ends the sample
                processor = steering.logits_processor(prompt, params["max_new_tokens"], f"generate.prompts[{number}]")
                steer = {"logits_processor": processor, "eos_token_id": tokenizer.eos_token_id}
            outputs = model.generate(**encoded, num_return_sequences=count, **settings, **steer)
            for index, output in enumerate(outputs):
                new_tokens = output[encoded["input_ids"].shape[1]:]
                ids = [int(t) for t in new_tokens if int(t) != tokenizer.pad_token_id]
                completion, ids = whole_characters(tokenizer, ids)
                rows.append({"prompt_index": number, "sample": index, "prompt": prompt, "completion": completion,
                             "new_tokens": len(ids), "completion_ids": ids,
                             **({"fields": dict(asked)} if isinstance(asked, dict) else {})})
                bar.advance(1)
    bar.close()
    if steering:
        ctx.log(steering.summary())
    context = check_context(ctx, tokenizer)
    if select:
        from engine.checks.selection import choose, write_candidates

        rows, candidates = choose(rows, params["samples_per_prompt"], select, params["checks"],
                                  context.writing_to(ctx.out / "candidates"), ctx.log)
        write_candidates(ctx.out / "candidates.jsonl", candidates)
    metrics: dict = {"samples": len(rows)}
    facts: dict = {}
    if params["checks"]:
        from engine.checks.reference import reference_metrics
        from engine.checks.scoring import run_all

        metrics.update(run_all(params["checks"], rows, context, ctx.log))
        reference, facts["reference"] = reference_metrics(params["checks"], len(rows), context, seed, ctx.log)
        if reference:
            metrics["reference"] = reference
        (ctx.out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True), encoding="utf-8")
    with open(ctx.out / "samples.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    ctx.log(f"{len(rows)} samples; first: {rows[0]['completion'][:120]!r}")
    return {"metrics": metrics, "facts": facts}


def whole_characters(tokenizer, ids: list[int]) -> tuple[str, list[int]]:
    """The text of `ids` and the ids it is made of, less the last tokens where they stop inside a
    character: `max_new_tokens` can cut a sample between the bytes of one (a byte-level tokenizer
    splits CJK text and emoji into bytes), and its decode would end in U+FFFD. A character has at
    most 4 bytes and a token at least one, so at most 3 tokens go. A U+FFFD they do not take away
    (bytes that make no character) stays; one the model wrote as the very last character goes too."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if text.endswith("\ufffd"):
        for cut in range(1, min(3, len(ids)) + 1):
            shorter = tokenizer.decode(ids[:-cut], skip_special_tokens=True)
            if not shorter.endswith("\ufffd"):
                return shorter, ids[:-cut]
    return text, ids


def prompt_texts(prompts: list, data: dict, tokenizer, chat: bool) -> list[str]:
    """The texts the model continues: a record prompt rendered by `data.prompt`; with `chat`, each
    prompt as a user turn through the chat template, ending where the assistant's answer starts."""
    from engine.errors import StageError
    from engine.dataprep import instructions
    from engine.dataprep.rows import Record, render

    texts = []
    for number, prompt in enumerate(prompts):
        if isinstance(prompt, dict):
            if not data.get("prompt"):
                raise StageError(f"generate.prompts[{number}] is a record, which needs data.prompt to render it; "
                                 "give the prompt as text, or set data.prompt")
            prompt = render([Record(dict(prompt), f"generate.prompts[{number}]")], data["prompt"], "data.prompt")[0]
        texts.append(prompt)
    if chat:
        template = instructions.chat_template(tokenizer, data)
        texts = [instructions.chat_prompt(tokenizer, template, [{"role": "user", "content": text}]) for text in texts]
    return texts


def check_context(ctx, tokenizer):
    """What the checks read besides the samples (engine/checks/context.py); files they write go to out/."""
    from engine.checks.context import CheckContext

    return CheckContext(tokenizer, ctx.inputs.get("data"), ctx.inputs.get("copy-index"),
                        ctx.params["generate"]["copy_span"], ctx.out)
