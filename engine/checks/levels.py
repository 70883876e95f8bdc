"""level: is each sample a well-formed, playable, new Super Mario Bros level?

A sample (prompt + completion) is read as columns, one per line, each 14 tiles bottom to top
(the serialisation of the mario-levels corpus). A last line of fewer than 14 known tiles is a
column cut by the token limit and is ignored; anything else on a line is judged.
  well_formed  the completion adds at least 8 columns, and every column is exactly 14 known tiles
  playable     MarioGPT's A* agent wins the level in one of two plays (engine/checks/mario_agent.py;
               `completion` is the share of the level's own columns Mario got past, 1 for a win).
               Where the agent cannot run (no Java) or runs past its time limit, the rules below
               judge, and `judge` says which did.
  identity     the share of tiles the new columns share with the nearest training window
               (engine/checks/level_novelty.py); a copy at >= 0.9
  novel_valid  playable and not a copy
  rules        a path exists from the left edge to the right edge under these movement rules:
               Mario takes one tile and stands on an empty tile (sky `-`, coin `o`, path `x`,
               enemy `E`) that has a solid tile below it (ground `X`, brick `S`, blocks `?` `Q`,
               pipe `<>[]`, cannon `B` `b`). From a standing place he can reach any standing
               place up to 4 columns left or right and up to 4 rows higher (a walk or a jump),
               or any number of rows lower (a fall). He starts on any standing place in the
               first column and must reach one in the last column. Gaps with no ground are
               falls to death: there is no standing place in them. Stricter than the game:
               on 40 real 24-column windows the agent won 36 (35 on a busy machine), the
               rules passed 21 (bench/level_agent.py). The agent won 0.88-0.91 of
               all 100 held-out windows of mario-levels (bench/level_held_out.py).
Metrics: level_well_formed_rate, level_playable_rate, level_novel_valid_rate (shares of all
samples), level_completion (the agent's mean completion, 0 for a level not well formed),
level_identity (mean identity of the well-formed levels).
"""
from __future__ import annotations

VERSION = 5  # (2: at least 8 new columns; garbage on the last line counts; 3: the A* agent judges, novelty; 4: edge
# columns padded; 5: ground under the right padding, Mario on the first column's highest floor, a lost level played
# again, completion over the level's own columns) bump when the same samples would get other results
METRICS = ("level_well_formed_rate", "level_playable_rate", "level_novel_valid_rate", "level_completion",
           "level_identity")  # what run reports (generate.select.by may name one)

from collections import deque

ROWS = 14
EMPTY = set("-oxE")
SOLID = set("XS?Q<>[]Bb")
TILES = EMPTY | SOLID
JUMP_UP, JUMP_ACROSS = 4, 4
MIN_NEW_COLUMNS = 8
AGENTS = 2  # levels played at once


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


def machine() -> str | None:
    """Where this machine cannot run the agent, that the rules judge (in the generate key, so that
    a machine without Java does not reuse the agent's verdicts, nor the agent the rules'). Why the
    agent cannot run is each sample's `judge` in the record, not in the key: a reworded reason
    reruns nothing."""
    from engine.checks import mario_agent

    return "judged by the rules" if mario_agent.available() else None


def run(samples: list[dict], context) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from engine.checks import mario_agent
    from engine.checks.level_novelty import COPY_IDENTITY

    unavailable = mario_agent.available()
    windows = training_windows(context)
    read = [(columns(s["prompt"] + s["completion"]), len(columns(s["prompt"]))) for s in samples]
    formed = [well_formed(cols, new + MIN_NEW_COLUMNS) for cols, new in read]
    with ThreadPoolExecutor(AGENTS) as pool:  # each play is a JVM of its own, mostly waiting on start-up
        verdicts = pool.map(lambda item: judge(item[0][0], unavailable) if item[1] else None, zip(read, formed))
    results = []
    for sample, (cols, new), ok, verdict in zip(samples, read, formed, verdicts):
        result = {"well_formed": ok, "playable": False, "columns": len(cols), "completion": 0.0}
        if ok:
            result.update(verdict)
            result["identity"] = round(windows.identity(cols[new:]), 4) if windows else None
        result["novel_valid"] = result["playable"] and (result.get("identity") or 0.0) < COPY_IDENTITY
        sample["level"] = result
        results.append(result)
    n = len(results) or 1
    identities = [r["identity"] for r in results if r.get("identity") is not None]
    return {"level_well_formed_rate": sum(r["well_formed"] for r in results) / n,
            "level_playable_rate": sum(r["playable"] for r in results) / n,
            "level_novel_valid_rate": sum(r["novel_valid"] for r in results) / n,
            "level_completion": round(sum(r["completion"] for r in results) / n, 4),
            "level_identity": round(sum(identities) / len(identities), 4) if identities else 0.0}


def judge(cols: list[str], unavailable: str | None) -> dict:
    """{"playable", "completion", "judge"}: the agent's verdict, or the rules' where it cannot give one."""
    from engine.checks import mario_agent
    from engine.corpora.mario_levels import from_columns

    played = {"failed": unavailable} if unavailable else mario_agent.play(from_columns("\n".join(cols)))
    if "failed" not in played:
        return {"playable": played["won"], "completion": played["completion"], "judge": "agent"}
    by_rules = playable(cols)
    return {"playable": by_rules, "completion": 1.0 if by_rules else 0.0, "judge": f"rules ({played['failed']})"}


def training_windows(context):
    """The training windows as a level_novelty.Windows, built once per context; None without data."""
    if getattr(context, "data", None) is None:
        return None
    from engine.checks.level_novelty import Windows

    return context.derived("level windows", lambda: Windows([columns(text) for text in context.training_texts()]))
