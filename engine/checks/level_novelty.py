"""How close a level is to the nearest training window, tile by tile (MarioGPT's novelty measure).

The training texts are windows of one width (the most common; others are left out). A level's new columns (those after its prompt)
are laid over every training window at every shift where they fit; at each placement, of the
places where either has something drawn (a tile that is not sky `-`), the share that hold the same
tile; the best placement's share is the level's `identity` (1.0: a training window's columns,
tile for tile). Sky is left out because it is most of every level: counting it, 30 held-out real
windows (3 whole segments held out) had a tile identity of 0.79 to 1.0, 13 of them >= 0.9;
counting drawn tiles only, 0.25 to 1.0, 5 of them >= 0.9 (bench/level_novelty.py). A level longer than the windows is read in consecutive window-wide pieces (the last one
ending at the level's end) and its identity is their mean: a level glued from copied pieces is a
copy too. A level with identity >= COPY_IDENTITY is a copy.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from engine.corpora.mario_levels import ROWS

SKY = ord("-")
COPY_IDENTITY = 0.9  # MarioGPT's line: a level 90% tile-identical to a training level is a copy


def tile_array(columns: list[str]) -> np.ndarray:
    return np.frombuffer("".join(columns).encode("ascii", "replace"), dtype=np.uint8).reshape(len(columns), -1)


class Windows:
    """The training windows as one array (windows x columns x rows), for nearest-window lookups."""

    def __init__(self, windows: list[list[str]]):
        rows = ROWS  # the windows are the training texts: those of another width or shape are not compared
        width = Counter(len(w) for w in windows if w).most_common(1)[0][0] if any(windows) else 0
        kept = [w for w in windows if len(w) == width and all(len(c) == rows for c in w)]
        self.width, self.rows = width, rows
        self.tiles = np.stack([tile_array(w) for w in kept]) if kept else np.zeros((0, width, rows), dtype=np.uint8)

    def identity(self, columns: list[str]) -> float:
        """The share of tiles of `columns` identical to the nearest training window's, at its best placement."""
        if not len(self.tiles) or not columns:
            return 0.0
        pieces = [columns[start:start + self.width] for start in range(0, len(columns), self.width)]
        if len(pieces) > 1 and len(pieces[-1]) < self.width:
            pieces[-1] = columns[-self.width:]
        return float(np.mean([self._piece(tile_array(piece)) for piece in pieces]))

    def _piece(self, piece: np.ndarray) -> float:
        best = 0.0
        for shift in range(self.width - len(piece) + 1):
            window = self.tiles[:, shift:shift + len(piece), :]
            drawn = (window != SKY) | (piece[None] != SKY)
            same = ((window == piece[None]) & drawn).sum(axis=(1, 2)) / np.maximum(drawn.sum(axis=(1, 2)), 1)
            best = max(best, float(same.max()))
        return best
