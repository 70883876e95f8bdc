"""MarioGPT's A* agent plays a level: the judge of the `level` check's playability.

The `mario-gpt` package (the corpus's package) ships `simulator/PlayAstar.jar`, the Mario AI
framework's A* agent as MarioGPT's paper uses it; it needs a Java runtime (Debian's
`default-jre-headless`). `java -jar PlayAstar.jar LEVEL.txt norender IMGDIR/` plays the level
(rows top to bottom, as the game reads it) and prints `Game Status: WIN Percentage Completion: 1.0`.

Every level is played with PAD columns of flat ground added on each side, real and sampled
alike: a window of a real level can start in the middle of a gap that the original Mario
crossed with a run-up from the columns before it (measured on 30 random 24-column windows of
the real levels: 27 won with the pad; without it 20 of 24).

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

from engine.packaged import Packaged

AGENT = Packaged("mario-gpt", "mario_gpt", "simulator/PlayAstar.jar")
PAD = 3  # columns of flat ground added before and after the level
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
    """The level with PAD columns of ground (the two bottom rows solid) before and after it."""
    last = len(rows) - 2
    return [(("X" if r >= last else "-") * PAD) + row + (("X" if r >= last else "-") * PAD) for r, row in enumerate(rows)]


def play(rows: list[str]) -> dict | None:
    """{"won": bool, "completion": fraction of the level's length reached} from one play of the
    padded level (`rows` top to bottom); None when the agent ran past TIMEOUT or printed no result."""
    jar = AGENT.locate("the level check's agent")
    with tempfile.TemporaryDirectory(prefix="engine-agent-") as folder:
        level = Path(folder) / "level.txt"
        level.write_text("\n".join(padded(rows)) + "\n", encoding="utf-8")
        try:
            done = subprocess.run(["java", "-jar", str(jar), str(level), "norender", str(jar.parent / "img") + "/"],
                                  capture_output=True, text=True, timeout=TIMEOUT, cwd=folder)
        except subprocess.TimeoutExpired:
            return None
    found = RESULT.search(done.stdout)
    if not found:
        return None
    return {"won": found.group(1) == "WIN", "completion": round(min(1.0, max(0.0, float(found.group(2)))), 4)}
