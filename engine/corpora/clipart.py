"""Clip-art drawings from the Open Clip Art Library, as Debian's `openclipart-svg` installs them.

About 7,400 SVG drawings in 22 category folders (`animals`, `computer`, `shapes`,
`signs_and_symbols`, ...; some with subfolders). Every drawing is in the public domain: the
library's "Creative Commons Public Domain Dedication" (Debian's copyright file for the package,
and each file's own `cc:license`). Not a Python package: `apt-get install openclipart-svg`.

One record per drawing: `category` (its top folder), `subcategory` (the folders below, or ""),
`name` (the file name in words: `aiga_down_arrow_.svg` is "aiga down arrow"), `title` and
`keywords` (the file's Dublin Core title and subject words, comma-separated; "" when absent),
`caption` (what the drawing is called: its title in words, or its name where the title is
missing or shared by 3 or more of the drawings read, as a collection's note is: "Part of the
Flat Icon Collection", "gramastar"), `svg` (the drawing in the normal form of
engine/formats/svg_normal.py: what is drawn only, numbers rounded, one element per line), `tokens`
(its size in that module's lexical tokens, about 0.94 of SmolLM2's) and `file`.
Left out: files that do not normalise (not XML, no size, a CSS sheet: 36 files), drawings of more
than `max_tokens` tokens (512 when absent), and repeats (the same normal form under another folder:
the first in path order is kept, so no drawing is in two categories).

The data key holds the package's version, its list of file digests and `VERSION` (the
normalisation's); each file read is checked against that list.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Iterator

from engine.formats import svg_normal
from engine.packaged import DebianPackage

PACKAGE = DebianPackage("openclipart-svg", "/usr/share/openclipart/svg")
VERSION = f"1, normal form {svg_normal.VERSION}"  # bump the 1 when the same files give other records
MAX_TOKENS = 512
SHARED_TITLE = 3  # a title this many drawings share is a collection's note, not a caption
CATEGORIES = ("animals", "buildings", "buttons", "computer", "containers", "decorations", "education", "electronics",
              "food", "geography", "logos", "office", "people", "plants", "recreation", "science", "shapes",
              "signs_and_symbols", "special", "tools", "transportation", "unsorted")
DC = "{http://purl.org/dc/elements/1.1/}"
RDF_LI = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li"
AGENT = "{http://web.resource.org/cc/}Agent"


def files(source: dict) -> list[Path]:
    """What the key identifies the corpus by: the package's own list of its files' digests."""
    PACKAGE.locate("corpus clipart-drawings")
    return [PACKAGE.digest_list()]


def drawings(source: dict) -> list[Path]:
    """The drawing files of the chosen categories, in path order (symbolic links, which repeat a
    drawing under another folder, left out)."""
    root = PACKAGE.locate("corpus clipart-drawings")
    wanted = source.get("categories") or CATEGORIES
    return sorted(p for category in wanted for p in (root / category).rglob("*.svg") if not p.is_symlink())


def describe(root: ET.Element) -> tuple[str, list[str]]:
    """The drawing's Dublin Core title and subject keywords (those of the work, not of its
    creator or publisher); ("", []) when it has none."""
    agents = {id(e) for agent in root.iter(AGENT) for e in agent.iter()}
    title = next((" ".join((e.text or "").split()) for e in root.iter(DC + "title") if id(e) not in agents), "")
    keywords: list[str] = []
    for subject in root.iter(DC + "subject"):
        words = [li.text for li in subject.iter(RDF_LI)] or (subject.text or "").split(",")
        keywords += [" ".join(w.split()) for w in words if w and w.strip()]
    return title, list(dict.fromkeys(keywords))


def words(name: str) -> str:
    return " ".join(w for w in re.split(r"[-_\s]+", name) if w)


def records(source: dict) -> Iterator[tuple[dict, str]]:
    root = PACKAGE.locate("corpus clipart-drawings")
    digests = PACKAGE.digests()
    limit = source.get("max_tokens", MAX_TOKENS)
    seen: set[str] = set()
    kept, titles = [], Counter()
    for path in drawings(source):
        data = path.read_bytes()
        PACKAGE.check(path, data, digests)
        tree = svg_normal.parse(data.decode("utf-8", errors="replace"))
        title, keywords = describe(tree) if tree is not None else ("", [])
        titles[title] += 1
        svg = svg_normal.normalise(tree) if tree is not None else None
        if svg is None or svg in seen or svg_normal.tokens(svg) > limit:
            continue
        seen.add(svg)
        kept.append((path.relative_to(root), title, keywords, svg))
    for relative, title, keywords, svg in kept:
        name = words(relative.stem)
        caption = words(title) if title and titles[title] < SHARED_TITLE else name
        yield ({"category": relative.parts[0], "subcategory": "/".join(relative.parts[1:-1]), "name": name,
                "title": title, "caption": caption, "keywords": ", ".join(keywords), "svg": svg,
                "tokens": svg_normal.tokens(svg), "file": relative.as_posix()},
               f"clipart-drawings {relative.as_posix()}")
