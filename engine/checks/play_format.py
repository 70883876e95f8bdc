"""play-format: does each sample follow the scene format of the Shakespeare corpus?

The corpus writes a speaker as a bold line (`**VIOLA**`) followed by the speech, as lines of
verse or prose of at most 74 characters (99% are under 60), stage directions in italics
(`_Exit_`) and headings with `#`. A sample follows the format when it is a dialogue (at least
two speaker lines), every speaker line but the last is followed by speech, and at least 80% of
its non-empty lines are speaker lines, speech lines of at most 100 characters, directions or
headings (not paragraphs of prose outside the play's form); a speech line, heading or direction
holds a letter: `#` alone or `*` alone is outside the form. 745 of the 775 scenes of the corpus
pass; the other 30 are soliloquies and prologues, one speaker alone, not a dialogue.
Reported: the share of samples that follow it, and the mean number of speech lines per turn;
where the spec has a `copy` check (its index is built), `play_novel_valid_rate`: the share that
follow the format and share no passage of `generate.copy_span` characters with a training scene.
"""
from __future__ import annotations

VERSION = 4  # bump when the same samples would get other results (2: dialogue of 2+ turns, line length; 3: novel_valid;
# 4: speech, headings and directions hold words)
METRICS = ("play_format_rate", "play_lines_per_turn", "play_novel_valid_rate")  # what run reports (generate.select.by may name one)

import re

SPEAKER = re.compile(r"^\*\*[A-Z][^*]{0,40}\*\*\s*$")
DIRECTION = re.compile(r"^_.*_\s*$")
HEADING = re.compile(r"^#{1,6} ")
WORD = re.compile(r"[^\W\d_]")  # a letter: speech, a heading or a direction says something ("O!" is speech)
LONGEST_LINE = 100


def analyse(text: str) -> dict:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    turns: list[int] = []
    outside = 0
    for line in lines:
        if SPEAKER.match(line.strip()):
            turns.append(0)
        elif (DIRECTION.match(line.strip()) or HEADING.match(line.strip())) and WORD.search(line):
            continue
        elif turns and len(line) <= LONGEST_LINE and WORD.search(line):
            turns[-1] += 1
        else:
            outside += 1
    follows = len(turns) >= 2 and all(t > 0 for t in turns[:-1]) and outside <= 0.2 * max(len(lines), 1)
    return {"follows_format": follows, "turns": len(turns), "lines_per_turn": sum(turns) / len(turns) if turns else 0.0}


def run(samples: list[dict], context) -> dict:
    results = [analyse(s["prompt"] + s["completion"]) for s in samples]
    for sample, result in zip(samples, results):
        sample["play_format"] = result
    with_turns = [r for r in results if r["turns"]]
    metrics = {"play_format_rate": sum(r["follows_format"] for r in results) / (len(results) or 1),
               "play_lines_per_turn": sum(r["lines_per_turn"] for r in with_turns) / (len(with_turns) or 1)}
    if getattr(context, "copy_index_folder", None) is not None:  # a spec with the `copy` check
        index = context.copy_index()
        for sample, result in zip(samples, results):
            result["novel_valid"] = result["follows_format"] and \
                index.longest_passage(sample["completion"]).length < context.copy_span
        metrics["play_novel_valid_rate"] = sum(r["novel_valid"] for r in results) / (len(results) or 1)
    return metrics
