"""Folk tunes in ABC notation from the `music21` package's corpus: one record per tune.

The corpus keeps several tunes per `.abc` file, each starting with an `X:` line. Collections:
`essenFolksong` (Essen, German and other folk songs; its licence is non-commercial),
`oneills1850` (O'Neill's Music of Ireland), `ryansMammoth` (Ryan's Mammoth Collection),
`airdsAirs` (Aird's Airs), and a few small ones. Read as text; music21 is not imported.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from engine.packaged import Packaged

PACKAGE = Packaged("music21", "music21", "corpus")
COLLECTIONS = ("airdsAirs", "essenFolksong", "josquin", "miscFolk", "nottingham-dataset", "oneills1850", "ryansMammoth")
HEADER = re.compile(r"^([A-Za-z]):\s*(.*)$")
MUSICAL = set("XTMLKPVQ")  # header fields that describe the music; B:, N:, Z:, S:... are about the source


def files(source: dict) -> list[Path]:
    root = PACKAGE.locate("corpus abc-tunes")
    wanted = source.get("collections") or COLLECTIONS
    return sorted(p for p in root.glob("*/*.abc") if p.parent.name in wanted)


def tunes(path: Path) -> Iterator[dict]:
    """Records of one file: collection, number (X), title (T), meter (M), length (L), key (K),
    text (the tune as written) and music (the tune without the bibliographic header lines:
    source, notes, transcriber, which carry names and e-mail addresses rather than music)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    blocks = re.split(r"(?m)^(?=X:)", text)
    for block in blocks:
        block = block.strip()
        if not block.startswith("X:"):
            continue
        fields: dict[str, str] = {}
        music: list[str] = []
        in_header = True
        for line in block.splitlines():
            match = HEADER.match(line) if in_header else None
            if match and match.group(1) not in fields:
                fields[match.group(1)] = match.group(2).strip()
            if not match or match.group(1) in MUSICAL:
                music.append(line)
            if line.startswith("K:"):
                in_header = False  # the header ends with the key
        yield {"collection": path.parent.name, "file": path.stem, "number": fields.get("X", ""),
               "title": fields.get("T", ""), "meter": fields.get("M", ""), "length": fields.get("L", ""),
               "key": fields.get("K", ""), "text": block, "music": "\n".join(music)}


def records(source: dict) -> Iterator[tuple[dict, str]]:
    for path in files(source):
        for tune in tunes(path):
            yield tune, f"abc-tunes {tune['collection']}/{tune['file']} X:{tune['number']}"
