"""MarioGPT's A* agent plays a level: the judge of the `level` check's playability.

The `mario-gpt` package (the corpus's package) ships `simulator/PlayAstar.jar`, the Mario AI
framework's A* agent as MarioGPT's paper uses it; it needs a Java runtime (Debian's
`default-jre-headless`). `java -jar PlayAstar.jar LEVEL.txt norender IMGDIR/` plays the level
(rows top to bottom, as the game reads it) and prints `Game Status: WIN Percentage Completion: 1.0`.

Every level is played with PAD columns added on each side, real and sampled alike: its edge
column repeated where it has something to stand on, flat ground where it is a gap. A window of a
real level can start in a gap the original Mario crossed with a run-up from the columns before
it, or on a ledge high above the ground (bench/level_agent.py measures the agent on real windows).

A few levels make the agent's search run on (a long brick corridor, measured once in 30 real
windows); after TIMEOUT seconds it is stopped and the rule-based reachability of levels.py
judges that level instead, and says so.
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
    """The level with PAD columns before and after it: its first (last) column repeated where that
    column has a solid tile, flat ground (the two bottom rows solid) where it has none."""
    ground = "".join("X" if r >= len(rows) - 2 else "-" for r in range(len(rows)))
    first, last = ([row[i] for row in rows] for i in (0, -1))
    before, after = (column if set(column) & SOLID else list(ground) for column in (first, last))
    return [before[r] * PAD + row + after[r] * PAD for r, row in enumerate(rows)]


def play(rows: list[str]) -> dict:
    """{"won": bool, "completion": fraction of the padded level's length reached} from one play of
    the padded level (`rows` top to bottom); {"failed": why} when the agent ran past TIMEOUT or
    printed no result."""
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
    return {"won": found.group(1) == "WIN", "completion": round(min(1.0, max(0.0, float(found.group(2)))), 4)}
