"""A Super Mario Bros level sample drawn as tiles (inline SVG), rows top to bottom.

A sample of the mario-levels corpus is one 14-tile column per line, bottom to top (see
engine/checks/levels.py), so character `h` of line `c` is drawn at column `c`, row `13 - h`.
Runs of one tile in a row are one rectangle, and sky is the background, so a level of a few
hundred columns stays a few kilobytes. A line that is not a column (too long, unknown tiles) is
drawn as it is, unknown tiles in magenta: a malformed sample should look malformed.
"""
from __future__ import annotations

from engine.report.markup import Html, esc, join, tag

ROWS = 14
TILE = 6  # pixels
MAX_COLUMNS = 400
SKY = "#a8d8ff"
UNKNOWN = "#ff00ff"
COLOURS = {  # tile -> (colour, what it is)
    "X": ("#8b4a1c", "ground"),
    "S": ("#c8682e", "brick"),
    "?": ("#f0b429", "question block"),
    "Q": ("#a97d22", "used question block"),
    "<": ("#1f7a2e", "pipe top"),
    ">": ("#1f7a2e", "pipe top"),
    "[": ("#34a848", "pipe"),
    "]": ("#34a848", "pipe"),
    "E": ("#d62828", "enemy"),
    "o": ("#ffd60a", "coin"),
    "B": ("#222222", "cannon top"),
    "b": ("#555555", "cannon"),
    "x": ("#f7c6d9", "path an agent took"),
}


def level_svg(prompt: str, completion: str) -> Html:
    """The sample's columns as tiles; a line marks where the prompt ends."""
    prompt_columns = [line for line in prompt.splitlines() if line.strip()]
    columns = (prompt_columns + [line for line in completion.splitlines() if line.strip()])[:MAX_COLUMNS]
    width, height = max(len(columns), 1) * TILE, ROWS * TILE
    parts = [f'<rect width="{width}" height="{height}" fill="{SKY}"/>']
    for row in range(ROWS):
        height_index = ROWS - 1 - row
        tiles = [column[height_index] if height_index < len(column) else "-" for column in columns]
        start = 0
        for i in range(1, len(tiles) + 1):
            if i == len(tiles) or tiles[i] != tiles[start]:
                if tiles[start] != "-":
                    colour = COLOURS.get(tiles[start], (UNKNOWN,))[0]
                    parts.append(f'<rect x="{start * TILE}" y="{row * TILE}" width="{(i - start) * TILE}" '
                                 f'height="{TILE}" fill="{colour}"/>')
                start = i
    if prompt_columns and len(columns) > len(prompt_columns):
        x = len(prompt_columns) * TILE
        parts.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{height}" stroke="#ffffff" stroke-width="1" '
                     f'stroke-dasharray="2,2"/>')
    title = f"level of {len(columns)} columns (the first {len(prompt_columns)} are the prompt)"
    return Html(f'<svg class="level" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
                f'aria-label="{esc(title)}"><title>{esc(title)}</title>{"".join(parts)}</svg>')


def legend() -> Html:
    """Each tile's colour and meaning, once per spec."""
    seen: dict[str, list[str]] = {}
    for char, (colour, meaning) in COLOURS.items():
        seen.setdefault(f"{colour}|{meaning}", []).append(char)
    items = [tag("span", join([Html(f'<i style="background:{key.split("|")[0]}"></i>'),
                               f"{' '.join(chars)} {key.split('|')[1]}"]), class_="tile")
             for key, chars in seen.items()]
    items.insert(0, tag("span", join([Html(f'<i style="background:{SKY}"></i>'), "- sky"]), class_="tile"))
    items.append(tag("span", join([Html(f'<i style="background:{UNKNOWN}"></i>'), "not a tile"]), class_="tile"))
    return tag("p", join(items), class_="legend")
