"""Creative corpora that install as Python packages, read as plain files.

Each corpus module provides `files(source) -> [Path]` (what is read, for the key) and
`records(source) -> iter((fields, origin))`, and a `PACKAGE` (the distribution it comes from).
"""
from __future__ import annotations

from engine.corpora import abc_tunes, mario_levels, shakespeare

CORPORA = {
    "shakespeare-plays": shakespeare,
    "abc-tunes": abc_tunes,
    "mario-levels": mario_levels,
}
