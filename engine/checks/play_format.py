"""play-format: does each sample follow the scene format of the Shakespeare corpus?

The corpus writes a speaker as a bold line (`**VIOLA**`) followed by the speech, stage
directions in italics (`_Exit_`) and headings with `#`. A sample follows the format when it has
at least one speaker line, every speaker line is followed by speech, and at least 80% of its
non-empty lines are speaker lines, speech, directions or headings (i.e. not prose outside turns).
Reported: the share of samples that follow it, and the mean number of speech lines per turn.
"""
from __future__ import annotations

import re

SPEAKER = re.compile(r"^\*\*[A-Z][^*]{0,40}\*\*\s*$")
DIRECTION = re.compile(r"^_.*_\s*$")
HEADING = re.compile(r"^#{1,6} ")


def analyse(text: str) -> dict:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    turns: list[int] = []
    outside = 0
    for line in lines:
        if SPEAKER.match(line.strip()):
            turns.append(0)
        elif DIRECTION.match(line.strip()) or HEADING.match(line.strip()):
            continue
        elif turns:
            turns[-1] += 1
        else:
            outside += 1
    follows = bool(turns) and all(t > 0 for t in turns[:-1]) and outside <= 0.2 * max(len(lines), 1)
    return {"follows_format": follows, "turns": len(turns), "lines_per_turn": sum(turns) / len(turns) if turns else 0.0}


def run(samples: list[dict], context) -> dict:
    results = [analyse(s["prompt"] + s["completion"]) for s in samples]
    for sample, result in zip(samples, results):
        sample["play_format"] = result
    with_turns = [r for r in results if r["turns"]]
    return {"play_format_rate": sum(r["follows_format"] for r in results) / (len(results) or 1),
            "play_lines_per_turn": sum(r["lines_per_turn"] for r in with_turns) / (len(with_turns) or 1)}
