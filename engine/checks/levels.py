"""level: is each sample a well-formed, playable Super Mario Bros level?

A sample (prompt + completion) is read as columns, one per line, each 14 tiles bottom to top
(the serialisation of the mario-levels corpus). A last line of fewer than 14 known tiles is a
column cut by the token limit and is ignored; anything else on a line is judged.
  well_formed  the completion adds at least 8 columns, and every column is exactly 14 known tiles
  playable     a path exists from the left edge to the right edge under these movement rules:
               Mario takes one tile and stands on an empty tile (sky `-`, coin `o`, path `x`,
               enemy `E`) that has a solid tile below it (ground `X`, brick `S`, blocks `?` `Q`,
               pipe `<>[]`, cannon `B` `b`). From a standing place he can reach any standing
               place up to 4 columns left or right and up to 4 rows higher (a walk or a jump),
               or any number of rows lower (a fall). He starts on any standing place in the
               first column and must reach one in the last column. Gaps with no ground are
               falls to death: there is no standing place in them.
"""
from __future__ import annotations

VERSION = 2  # (2: at least 8 new columns; garbage on the last line counts) bump when the same samples would get other results
METRICS = ("level_well_formed_rate", "level_playable_rate")  # what run reports (generate.select.by may name one)

from collections import deque

ROWS = 14
EMPTY = set("-oxE")
SOLID = set("XS?Q<>[]Bb")
TILES = EMPTY | SOLID
JUMP_UP, JUMP_ACROSS = 4, 4
MIN_NEW_COLUMNS = 8


def columns(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and len(lines[-1]) < ROWS and set(lines[-1]) <= TILES:
        lines = lines[:-1]  # generation stopped mid-column
    return lines


def well_formed(cols: list[str], minimum: int = 2) -> bool:
    return len(cols) >= minimum and all(len(c) == ROWS and set(c) <= TILES for c in cols)


def standing_places(cols: list[str]) -> list[set[int]]:
    """Per column, the heights (0 = bottom row) where Mario can stand."""
    places = []
    for col in cols:
        places.append({h for h in range(1, ROWS) if col[h] in EMPTY and col[h - 1] in SOLID})
    return places


def playable(cols: list[str]) -> bool:
    if not well_formed(cols):
        return False
    places = standing_places(cols)
    frontier = deque((0, h) for h in places[0])
    seen = set(frontier)
    while frontier:
        c, h = frontier.popleft()
        if c == len(cols) - 1:
            return True
        for c2 in range(max(0, c - JUMP_ACROSS), min(len(cols), c + JUMP_ACROSS + 1)):
            for h2 in places[c2]:
                if h2 <= h + JUMP_UP and (c2, h2) not in seen:
                    seen.add((c2, h2))
                    frontier.append((c2, h2))
    return False


def run(samples: list[dict], context) -> dict:
    results = []
    for sample in samples:
        cols = columns(sample["prompt"] + sample["completion"])
        formed = well_formed(cols, len(columns(sample["prompt"])) + MIN_NEW_COLUMNS)
        result = {"well_formed": formed, "playable": formed and playable(cols), "columns": len(cols)}
        sample["level"] = result
        results.append(result)
    n = len(results) or 1
    return {"level_well_formed_rate": sum(r["well_formed"] for r in results) / n,
            "level_playable_rate": sum(r["playable"] for r in results) / n}
