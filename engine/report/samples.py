"""Samples side by side: the model before fine-tuning (`generate[baseline]`) and after (`generate`).

Per prompt, sample i of the baseline beside sample i of the fine-tuned model, as escaped
preformatted text with each sample's check results under it. The passage a sample shares with
the training data (`copy_passage`, shortened to its first characters in samples.jsonl; its full
length is `copy_span`) is highlighted where it starts in the completion. Level samples are also
drawn as tiles, ABC tunes as sheet music (in the browser, sheet.py) with their text, and SVG
drawings as the `svg` check's thumbnails (pictures.py) above their text. With `generate.select`,
the candidates it did not keep follow each prompt, folded, with their scores. A sweep
shows each variant in a folded section, the best one open.
"""
from __future__ import annotations

from pathlib import Path

from engine.report.data import SpecData, Variant, samples
from engine.report.markup import Html, esc, join, number, tag
from engine.report.pictures import thumbnail
from engine.report.sheet import is_tunes, score
from engine.report.tiles import legend, level_svg

MAX_PER_PROMPT = 16
LEVEL, TUNE = "level", "tune"  # how a sample is drawn besides its text
NOT_CHECKS = {"prompt_index", "sample", "candidate", "prompt", "completion", "completion_ids", "copy_passage"}


def samples_section(data: SpecData, best: str | None = None) -> Html:
    """Every variant's samples beside its baseline's (see module docstring)."""
    levels = data.spec.get("data.source.corpus") == "mario-levels"
    drawing = LEVEL if levels else TUNE if is_tunes(data.spec) else None
    blocks = []
    pairs = generate_pairs(data.variants())
    for label, tuned, baseline in pairs:
        block = side_by_side(data, baseline, tuned, drawing)
        if len(pairs) > 1:
            summary = label + (" (best)" if label == best else "")
            block = tag("details", join([tag("summary", summary), block]), open="" if label == best else None)
        blocks.append(block)
    if not blocks:
        return Html("")
    return join([legend() if levels else "", *blocks])


def generate_pairs(variants: list[Variant]) -> list[tuple[str, str, str | None]]:
    """[(variant label, generate node, its baseline node or None)], each generate node once."""
    seen: dict[str, tuple[str, str, str | None]] = {}
    for variant in variants:
        tuned = variant.nodes.get("generate")
        if tuned and tuned not in seen:
            seen[tuned] = (variant.label, tuned, variant.nodes.get("generate[baseline]"))
    return list(seen.values())


def side_by_side(data: SpecData, baseline: str | None, tuned: str, drawing: str | None) -> Html:
    sides = [(name, heading) for name, heading in ((baseline, "before fine-tuning"), (tuned, "fine-tuned")) if name]
    rows = {name: _rows(data, name) for name, _ in sides}
    outs = {name: data.out(name) for name, _ in sides}  # a drawing's thumbnail is read from there
    candidates = {name: samples(outs[name], "candidates.jsonl") or [] for name, _ in sides}
    columns = len(sides)
    head = join(tag("div", join([tag("strong", heading), ": ", tag("code", name), _state(data, name)]), class_="side-head")
                for name, heading in sides)
    body = [tag("div", head, class_=f"grid cols{columns}")]
    for name, _ in sides:
        if isinstance(rows[name], str):
            body.append(tag("p", f"{name}: {rows[name]}", class_="missing"))
    found = {name: r for name, r in rows.items() if isinstance(r, list)}
    prompts: dict[int, str] = {}
    for r in found.values():
        for row in r:
            prompts.setdefault(_int(row.get("prompt_index")), str(row.get("prompt", "")))
    for index in sorted(prompts):
        body.append(tag("p", join(["prompt ", str(index), ":"]), class_="prompt-head"))
        body.append(tag("pre", prompts[index], class_="prompt"))
        per_side = {name: [row for row in found.get(name, []) if _int(row.get("prompt_index")) == index]
                    for name, _ in sides}
        count = max(len(v) for v in per_side.values())
        for i in range(min(count, MAX_PER_PROMPT)):
            cells = [_cell(per_side[name][i], drawing, outs[name]) if i < len(per_side[name]) else tag("div", "", class_="cell")
                     for name, _ in sides]
            body.append(tag("div", join(cells), class_=f"grid cols{columns}"))
        if count > MAX_PER_PROMPT:
            body.append(tag("p", f"{count - MAX_PER_PROMPT} more samples of this prompt in samples.jsonl", class_="note"))
        body.append(rejected(candidates, sides, index))
    return join(body)


def rejected(candidates: dict[str, list[dict]], sides: list[tuple[str, str]], index: int) -> Html:
    """Per side, the candidates `generate.select` did not keep for prompt `index`: folded, each
    with its text and its scores."""
    parts = []
    for name, heading in sides:
        rows = [r for r in candidates[name] if _int(r.get("prompt_index")) == index and not r.get("kept")]
        cells = [tag("div", join([tag("p", f"candidate {row.get('candidate', '?')}", class_="sample-head"),
                                  tag("pre", str(row.get("completion", ""))),
                                  checks(row["scores"]) if isinstance(row.get("scores"), dict) else ""]), class_="cell")
                 for row in rows[:MAX_PER_PROMPT]]
        if cells:
            summary = f"{len(rows)} rejected candidate{'s' if len(rows) != 1 else ''} ({heading}, candidates.jsonl)"
            parts.append(tag("details", join([tag("summary", summary), *cells]), class_="rejected"))
    return join(parts)


def _rows(data: SpecData, name: str) -> list[dict] | str:
    """The node's samples, or why there are none ("not run", "not in store")."""
    if name not in data.nodes:
        return "not run"
    rows = samples(data.out(name))
    return "not in store" if rows is None else rows


def _state(data: SpecData, name: str) -> Html:
    state = data.state(name)
    return Html("") if state == "current" else join([" ", tag("span", state, class_="state stale")])


def _int(value) -> int:
    return value if isinstance(value, int) else -1


def _cell(row: dict, drawing: str | None, out: Path | None = None) -> Html:
    text = completion(row)
    prompt, raw = str(row.get("prompt", "")), str(row.get("completion", ""))
    head = f"sample {row.get('sample', '?')}" + (f" (candidate {row['candidate']})" if "candidate" in row else "")
    parts = [tag("p", head, class_="sample-head"), thumbnail(row, out)]
    if drawing == LEVEL:
        parts.append(tag("div", level_svg(prompt, raw), class_="level-box"))
        parts.append(tag("details", join([tag("summary", "text"), tag("pre", text)])))
    elif drawing == TUNE:
        parts.append(tag("div", join([score(prompt, raw), tag("pre", text)]), class_="tune"))
    else:
        parts.append(tag("pre", text))
    parts.append(checks(row))
    return tag("div", join(parts), class_="cell")


def completion(row: dict) -> Html:
    """The completion, escaped, with the copied passage (if any) in <mark>."""
    text = str(row.get("completion", ""))
    passage, span = row.get("copy_passage"), row.get("copy_span")
    prefix = passage[:-1] if isinstance(passage, str) and passage.endswith("…") else passage
    start = text.find(prefix) if isinstance(prefix, str) and prefix else -1
    if start < 0:
        return esc(text)
    length = span if isinstance(span, int) and span >= len(prefix) else len(prefix)
    end = min(len(text), start + length)
    title = f"{length} characters shared with the training data"
    return join([text[:start], tag("mark", text[start:end], title=title), text[end:]])


def checks(row: dict) -> Html:
    """Each check's result for one sample: `level: well_formed ✓ playable ✗ columns 57`."""
    items = []
    for key, value in row.items():
        if key in NOT_CHECKS:
            continue
        items.append(tag("li", join([tag("b", key), " ", _value(value)])))
    return tag("ul", join(items), class_="checks") if items else Html("")


def _value(value) -> Html:
    if isinstance(value, bool):
        return tag("span", "✓" if value else "✗", class_="ok" if value else "bad")
    if isinstance(value, dict):
        return join(join([" " if i else "", k, " ", _value(v)]) for i, (k, v) in enumerate(value.items()))
    if isinstance(value, str):
        return esc(repr(value) if not value.isprintable() else value)
    return esc(number(value))
