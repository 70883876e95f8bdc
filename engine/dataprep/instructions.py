"""Instruction and chat data: examples whose loss falls on the answer alone.

`data.prompt` + `data.completion` (templates over record fields) or `data.messages` (a field of
`[{role, content}, ...]` turns, rendered with the tokenizer's chat template or
`data.chat_template`) become token examples with a `labels` column: the token ids where the
model is to learn them, -100 on prompt tokens and on user and system turns.

Each example is a list of segments (text, learned?) tokenized one by one, so the prompt's
tokens are exactly those that generation later feeds the model; a learned segment is followed
by the end-of-text token in the prompt/completion form (the model learns to stop). Examples
longer than `data.max_length` are cut at the end; one with no learned token left is a bad row
(`data.on_bad_rows`). With `data.packing`, whole examples are packed in order into blocks of at
most `max_length` tokens (no example is split across blocks); without it, one example a row.
"""
from __future__ import annotations

from typing import Any

from engine.dataprep import preferences
from engine.dataprep.rows import BadRows, Record, render, template_fields
from engine.errors import StageError

CHAT_ROLES = ("system", "user", "assistant")  # the roles of chat turns (a stage's ROLES are its input roles)
IGNORE = -100


def mode(data: dict) -> str:
    """`text` (plain language modelling), `completion` (prompt + completion), `chat` (messages), or a
    preference form: `pairs`, `graded`, `prompts` (engine/dataprep/preferences.py)."""
    if data.get("messages"):
        return "chat"
    form = preferences.form_of(data)
    if form is not None:
        return form
    return "completion" if data.get("completion") is not None else "text"


def uses(data: dict) -> dict[str, str]:
    """{record field: purpose} of the fields the instruction form reads."""
    if mode(data) == "chat":
        return {data["messages"]: "the chat turns data.messages"}
    if mode(data) in preferences.FORMS:
        return preferences.uses(data)
    out = {name: "the template data.prompt" for name in template_fields(data["prompt"], "data.prompt")}
    out.update({name: "the template data.completion" for name in template_fields(data["completion"], "data.completion")})
    return out


def well_formed(records: list[Record], field: str, bad_rows: BadRows) -> list[Record]:
    """The records whose `field` is a list of {role, content} turns with at least one assistant turn."""
    kept = []
    for record in records:
        problem = message_problem(record.fields.get(field))
        if problem is None:
            kept.append(record)
        else:
            bad_rows.reject(record.origin, f"data.messages field {field!r} {problem}",
                            'give a list like [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]')
    return kept


def message_problem(turns: Any) -> str | None:
    """What is wrong with one record's chat turns, or None."""
    if turns is None:
        return "is missing"
    if not isinstance(turns, list) or not turns:
        return f"is not a non-empty list of turns (it is {type(turns).__name__})"
    for number, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("role"), str) or not isinstance(turn.get("content"), str):
            return f"turn {number} is not an object with string `role` and `content`"
        if turn["role"] not in CHAT_ROLES:
            return f"turn {number} has role {turn['role']!r}; roles are {', '.join(CHAT_ROLES)}"
    if not any(turn["role"] == "assistant" for turn in turns):
        return "has no assistant turn (nothing to learn)"
    return None


def columns(records: list[Record], data: dict) -> dict[str, list]:
    """The split's instruction columns: `prompt` and `completion` texts, or `messages`."""
    if mode(data) == "chat":
        return {"messages": [[{"role": t["role"], "content": t["content"]} for t in r.fields[data["messages"]]]
                             for r in records]}
    return {"prompt": render(records, data["prompt"], "data.prompt"),
            "completion": render(records, data["completion"], "data.completion")}


def texts(columns: dict[str, list]) -> list[str]:
    """The split's texts whatever their form: a tokenizer trained on the data learns from these."""
    if "messages" in columns:
        return ["\n".join(turn["content"] for turn in turns) for turns in columns["messages"]]
    if "chosen" in columns:
        return [prompt + answer for prompt, chosen, rejected in zip(columns["prompt"], columns["chosen"], columns["rejected"])
                for answer in (chosen, rejected)]
    if "completion" in columns:
        return [prompt + completion for prompt, completion in zip(columns["prompt"], columns["completion"])]
    return columns["text"] if "text" in columns else columns["prompt"]


def chat_template(tokenizer, data: dict) -> str:
    """The Jinja chat template: the spec's `data.chat_template`, else the tokenizer's own."""
    template = data.get("chat_template") or getattr(tokenizer, "chat_template", None)
    if not template:
        raise StageError("data.messages needs a chat template, and the model's tokenizer has none; set "
                         "data.chat_template (a Jinja template, as in a tokenizer_config.json), or use a model "
                         "that ships one (an -Instruct model)")
    return template


def chat_prompt(tokenizer, template: str, turns: list[dict]) -> str:
    """The text that asks the model for the next assistant turn."""
    return tokenizer.apply_chat_template(turns, chat_template=template, tokenize=False, add_generation_prompt=True)


def chat_segments(turns: list[dict], tokenizer, template: str) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, learned) pieces: each assistant turn as the template
    renders it after the generation prompt (its end-of-turn marker included) is learned."""
    def rendered(upto: list[dict], ask: bool) -> str:
        return tokenizer.apply_chat_template(upto, chat_template=template, tokenize=False, add_generation_prompt=ask)

    segments, done = [], ""
    for number, turn in enumerate(turns):
        if turn["role"] != "assistant":
            continue
        before, after = rendered(turns[:number], True), rendered(turns[:number + 1], False)
        if not (before.startswith(done) and after.startswith(before)):
            raise StageError("the chat template does not render a conversation as a growing text (a turn changes "
                             "what came before it), so the assistant turns cannot be located; use another "
                             "data.chat_template")
        segments += [(before[len(done):], False), (after[len(before):], True)]
        done = after
    whole = rendered(turns, False)
    if whole.startswith(done) and len(whole) > len(done):
        segments.append((whole[len(done):], False))
    return [(text, learned) for text, learned in segments if text]


def instruction_examples(splits: dict, tokenizer, data: dict, bar, bad_rows: BadRows) -> tuple[dict, dict]:
    """Token examples with `labels` (-100 where nothing is learned), packed or one per row."""
    from datasets import Dataset, Features, List, Value

    if tokenizer.eos_token_id is None:
        raise StageError("the model's tokenizer has no end-of-text token; causal-lm data needs one")
    form, max_length, eos = mode(data), data["max_length"], tokenizer.eos_token_id
    template = chat_template(tokenizer, data) if form == "chat" else None
    features = Features({"input_ids": List(Value("int32")), "labels": List(Value("int32"))})
    out: dict = {}
    facts: dict = {"packing": data["packing"], "max_length": max_length, "form": form, "truncated": {}, "no_answer": {}}
    for split, cols in splits.items():
        if form == "chat":
            pieces = [chat_segments(turns, tokenizer, template) for turns in cols["messages"]]
        else:
            pieces = [[(p, False), (c, True)] for p, c in zip(cols["prompt"], cols["completion"])]
        examples, truncated, empty = [], 0, 0
        for segments in pieces:
            ids, labels = tokenized(segments, tokenizer, eos if form == "completion" else None)
            if len(ids) > max_length:
                truncated += 1
                ids, labels = ids[:max_length], labels[:max_length]
            if all(label == IGNORE for label in labels) or not any(text.strip() for text, learned in segments if learned):
                empty += 1
                continue
            examples.append((ids, labels))
        bar.advance(len(pieces))
        if empty:
            _no_answer(split, empty, len(pieces), max_length, bad_rows)
        rows = _packed(examples, max_length) if data["packing"] else examples
        facts.update({f"{split}_texts": len(pieces), f"{split}_examples": len(rows),
                      f"{split}_tokens": sum(len(ids) for ids, _ in rows),
                      f"{split}_learned_tokens": sum(sum(label != IGNORE for label in labels) for _, labels in rows)})
        facts["truncated"][split], facts["no_answer"][split] = truncated, empty
        if rows:  # an empty split is left out: datasets cannot reload a 0-row split from disk
            out[split] = Dataset.from_dict({"input_ids": [ids for ids, _ in rows], "labels": [lb for _, lb in rows]},
                                           features=features)
    return out, facts


def tokenized(segments: list[tuple[str, bool]], tokenizer, eos: int | None) -> tuple[list[int], list[int]]:
    """(ids, labels) of (text, learned) segments tokenized one by one, then `eos` (learned) if given."""
    ids: list[int] = []
    labels: list[int] = []
    for text, learned in segments:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if learned else [IGNORE] * len(piece)
    if eos is not None:  # prompt + completion: the model learns to stop after the completion
        ids.append(eos)
        labels.append(eos)
    return ids, labels


def _no_answer(split: str, empty: int, total: int, max_length: int, bad_rows: BadRows) -> None:
    message = (f"{empty} of {total} {split} example(s) have no answer to learn: an empty completion, or none left "
               f"after cutting to data.max_length {max_length} (the prompt fills it)")
    if bad_rows.policy == "error":
        raise StageError(f"{message}; raise data.max_length, shorten the prompts, or set data.on_bad_rows: skip "
                         "to leave them out")
    bad_rows.skipped.append(f"{message}: left out (data.on_bad_rows: skip)")


def _packed(examples: list[tuple[list[int], list[int]]], size: int) -> list[tuple[list[int], list[int]]]:
    """Whole examples joined in order into blocks of at most `size` tokens."""
    blocks: list[tuple[list[int], list[int]]] = []
    ids: list[int] = []
    labels: list[int] = []
    for example_ids, example_labels in examples:
        if ids and len(ids) + len(example_ids) > size:
            blocks.append((ids, labels))
            ids, labels = [], []
        ids.extend(example_ids)
        labels.extend(example_labels)
    if ids:
        blocks.append((ids, labels))
    return blocks
