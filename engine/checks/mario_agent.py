"""MarioGPT's A* agent plays a level: the judge of the `level` check's playability.

The `mario-gpt` package (the corpus's package) ships `simulator/PlayAstar.jar`, the Mario AI
framework's A* agent as MarioGPT's paper uses it; it needs a Java runtime (Debian's
`default-jre-headless`). `java -jar PlayAstar.jar LEVEL.txt norender IMGDIR/` plays the level
(rows top to bottom, as the game reads it) and prints `Game Status: WIN Percentage Completion: 1.0`.

Every level is played as `padded` makes it, real and sampled alike. A window of a real level is
cut out of a longer one: it can start in a gap the original Mario crossed with a run-up from the
columns before it, on a ledge high above the ground, or end in mid-air where the level goes on.
So PAD columns go on each side: before it, its first column repeated where that has something to
stand on, flat ground where it is a gap; after it, its last column's solid tiles over flat
ground. Mario starts on the highest floor of the first column (the framework's default is the
lowest: a window whose route begins on a high ledge was lost from the ground below it).

A win proves a level playable; a loss does not prove it unplayable: the agent searches in real
time, and one real window it wins in 2 s is lost in another play. So a lost level is played once
more, and a win in either play counts (`play`, TRIES). bench/level_agent.py measures all this on
real windows.

A few levels make the agent's search run on (a brick corridor with enemies, measured past 120 s);
after TIMEOUT seconds it is stopped and the rule-based reachability of levels.py judges that
level instead, and says so.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.checks.levels import SOLID
from engine.packaged import Packaged

AGENT = Packaged("mario-gpt", "mario_gpt", "simulator/PlayAstar.jar")
PAD = 3  # columns added before and after the level (`padded`)
TIMEOUT = 10  # seconds; one level plays in about 1.5 s, JVM start included
TRIES = 2  # plays of a level the agent loses (a win in any counts)
START = "M"  # the framework's tile for where Mario starts
RESULT = re.compile(r"Game Status: (\w+) Percentage Completion: ([-\d.]+)")


def available() -> str | None:
    """None when the agent can run here, else why not (said in the record: the rules judged)."""
    if shutil.which("java") is None:
        return "no Java runtime (apt-get install default-jre-headless)"
    try:
        AGENT.locate("the level check's agent")
    except Exception as error:  # noqa: BLE001 - the reason is reported, the rules judge instead
        return str(error)
    return None


def padded(rows: list[str]) -> list[str]:
    """The level with PAD columns before and after it (top to bottom, as the game reads it): before,
    its first column repeated where that column has a solid tile, flat ground (the two bottom rows
    solid) where it has none; after, its last column's solid tiles over flat ground; and START on
    the highest floor of the first column."""
    ground = ["X" if r >= len(rows) - 2 else "-" for r in range(len(rows))]
    first, last = ([row[i] for row in rows] for i in (0, -1))
    before = first if set(first) & SOLID else ground
    after = [tile if tile in SOLID else floor for tile, floor in zip(last, ground)]
    out = [before[r] * PAD + row + after[r] * PAD for r, row in enumerate(rows)]
    top = next((r for r in range(len(out) - 1) if out[r][0] not in SOLID and out[r + 1][0] in SOLID), None)
    if top is not None:  # else (a solid tile in the top row only) the framework's own start
        out[top] = START + out[top][1:]
    return out


def play(rows: list[str]) -> dict:
    """{"won": bool, "completion": the share of the level's own length Mario reached} from up to
    TRIES plays of the padded level (`rows` top to bottom), the first won or else the first lost;
    {"failed": why} when the agent ran past TIMEOUT or printed no result."""
    result = once(rows)
    for _ in range(TRIES - 1):
        if result.get("won", True):  # a win, or no verdict at all (a timeout would only repeat)
            break
        again = once(rows)
        result = again if again.get("won") else result
    return result


def once(rows: list[str]) -> dict:
    """One play of the padded level: as `play`."""
    jar = AGENT.locate("the level check's agent")
    with tempfile.TemporaryDirectory(prefix="engine-agent-") as folder:
        level = Path(folder) / "level.txt"
        level.write_text("\n".join(padded(rows)) + "\n", encoding="utf-8")
        try:
            done = subprocess.run(["java", "-jar", str(jar), str(level), "norender", str(jar.parent / "img") + "/"],
                                  capture_output=True, text=True, timeout=TIMEOUT, cwd=folder)
        except subprocess.TimeoutExpired:
            return {"failed": "the agent ran past its time limit"}
    found = RESULT.search(done.stdout)
    if not found:
        return {"failed": f"the agent printed no result (exit {done.returncode}: {done.stderr.strip()[-120:]})"}
    won = found.group(1) == "WIN"
    return {"won": won, "completion": 1.0 if won else own_share(float(found.group(2)), len(rows[0]))}


def own_share(reached: float, width: int) -> float:
    """The agent's completion (Mario's x over the padded level's exit column, PAD columns before the
    level's first) as the share of the level's own `width` columns he got past, 0 to 1."""
    column = reached * (width + 2 * PAD - 1) - PAD
    return round(min(1.0, max(0.0, column / max(1, width - 1))), 4)
