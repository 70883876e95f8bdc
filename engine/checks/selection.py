"""Best of N by the checks: `generate.select: {candidates: N, by: METRIC, mode: max|min}`.

The generate stage samples N candidates per prompt (seeded, as any sampling), `score_each` judges
each candidate alone with the spec's `generate.checks`, and the best `samples_per_prompt` by
METRIC are kept: the highest with `mode: max`, the lowest with `min`; on a tie, the earlier
candidate. The kept ones, best first, are the stage's samples (samples.jsonl, and the checks'
metrics are theirs); `candidates.jsonl` lists every candidate with its scores and whether it was
kept. A rate is 1.0 or 0.0 for one candidate, so `by: play_format_rate` keeps candidates that
follow the format ahead of those that do not, earliest first.

`by` must name a metric of one of the checks: a located spec error when the checks declare their
metric names (`METRICS`), else a StageError as soon as the first candidate is scored.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.checks.scoring import known_metrics, score_each
from engine.errors import Problem, StageError


def choose(rows: list[dict], keep: int, select: dict, check_names, context, log) -> tuple[list[dict], list[dict]]:
    """(kept samples, every candidate) of the sampled `rows` (each with `prompt_index` and `sample`,
    its candidate number).

    Kept rows are the candidates as sampled, renumbered `sample` 0.. best first, with `candidate`
    their number among the prompt's candidates. Candidate rows are the candidates annotated by the
    checks (judged alone), with `candidate`, `scores`, `kept` and `sample` (their number among the
    kept, or None); without `prompt` and `completion_ids` (samples.jsonl has them).
    """
    by, mode = select["by"], select.get("mode", "max")
    judged = [dict(row) for row in rows]
    scores = score_each(check_names, judged[:1], context)  # one first: a `by` no check reports fails fast
    scores += score_each(check_names, judged[1:], context)
    for score in scores:
        if by not in score:
            raise StageError(f"generate.select.by: {by!r} is not a metric the checks {', '.join(check_names)} report "
                             f"for a sample; they report {', '.join(sorted(score))}; set generate.select.by to one of them")
    places: dict[tuple[int, int], int] = {}  # (prompt, candidate) -> its number among the kept
    kept: list[dict] = []
    for prompt in sorted({row["prompt_index"] for row in rows}):
        mine = [i for i, row in enumerate(rows) if row["prompt_index"] == prompt]
        ranked = sorted(mine, key=lambda i: (-scores[i][by] if mode == "max" else scores[i][by], rows[i]["sample"]))
        for number, i in enumerate(ranked[:keep]):
            places[(prompt, rows[i]["sample"])] = number
            kept.append({**rows[i], "sample": number, "candidate": rows[i]["sample"]})
    candidates = []
    for row, score in zip(judged, scores):
        place = places.get((row["prompt_index"], row["sample"]))
        rest = {k: v for k, v in row.items() if k not in ("prompt", "completion_ids", "sample")}
        candidates.append({"prompt_index": row["prompt_index"], "candidate": row["sample"], "kept": place is not None,
                           "sample": place, "scores": score, **rest})
    mean = lambda values: sum(values) / len(values) if values else 0.0  # noqa: E731
    chosen = [score[by] for score, row in zip(scores, candidates) if row["kept"]]
    log(f"kept {len(kept)} of {len(rows)} candidates by {by} ({mode}): mean {mean(chosen):.3g} kept, "
        f"{mean([score[by] for score in scores]):.3g} all")
    return kept, candidates


def write_candidates(path: Path, candidates: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in candidates:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def spec_problems(spec) -> list[Problem]:
    """What is wrong with `generate.select` in a spec (and each of its sweep variants), located:
    it needs checks to score with, sampling to draw different candidates, at least as many
    candidates as samples kept, and `by` naming a metric of the checks (where they declare them)."""
    found: dict[Problem, None] = {}
    for one in (spec, *(variant for _, _, variant in getattr(spec, "variants", ()))):
        for problem in _problems(one):
            found.setdefault(problem)
    return list(found)


def _problems(spec) -> list[Problem]:
    select = spec.get("generate.select")
    if not select:
        return []

    def problem(key: str, message: str) -> Problem:
        place = spec.place(f"generate.select.{key}") or spec.place("generate.select") or spec.place("generate")
        where = (place.file, place.line, place.col) if place else (spec.path.name, 0, 0)
        return Problem(*where, f"$.generate.select.{key}" if key else "$.generate.select", message)

    checks = list(spec.get("generate.checks") or ())
    out = []
    if not checks:
        out.append(problem("", "needs generate.checks to score the candidates with (e.g. checks: [play-format]); "
                               "add checks, or remove select"))
    else:
        names = known_metrics(checks)
        if names is not None and select["by"] not in names:
            import difflib

            close = difflib.get_close_matches(select["by"], sorted(names), n=1, cutoff=0.6)
            out.append(problem("by", f"{select['by']!r} is not a metric of generate.checks ({', '.join(checks)})"
                                     + (f" (did you mean {close[0]}?)" if close else "")
                                     + f"; they report: {', '.join(sorted(names))}"))
    if select["candidates"] < spec.get("generate.samples_per_prompt"):
        out.append(problem("candidates", f"{select['candidates']} candidates cannot give the "
                                         f"{spec.get('generate.samples_per_prompt')} samples per prompt kept from them; "
                                         "raise candidates, or lower generate.samples_per_prompt"))
    if spec.get("generate.temperature") == 0 and select["candidates"] > 1:
        out.append(problem("candidates", "greedy decoding (generate.temperature 0) draws the same candidate every time; "
                                         "set generate.temperature above 0 to choose among different ones"))
    return out
