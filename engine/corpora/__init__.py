"""Creative corpora that install as Python packages, read as plain files.

Each corpus module provides `files(source) -> [Path]` (what is read, for the key) and
`records(source) -> iter((fields, origin))`, and a `PACKAGE` (the distribution it comes from: a
Python package, or a Debian one for `clipart-drawings`). A corpus whose records are more than
its files as written (a normal form) also has a `VERSION`, in the data key, bumped when the same
files would give other records.
"""
from __future__ import annotations

from engine.corpora import abc_tunes, clipart, mario_levels, shakespeare

CORPORA = {
    "shakespeare-plays": shakespeare,
    "abc-tunes": abc_tunes,
    "mario-levels": mario_levels,
    "clipart-drawings": clipart,
}
