"""SVG values written one way: numbers, path data, colours and lengths (rule 5 of the normal form,
engine.formats.svg_normal), shared with the `svg` check (engine.checks.svg), which reads colours.

Numbers keep 3 significant digits, at least `precision` decimals (`DECIMALS`) and at most 4, and
are written shortest; path data compactly (`M10 20L30.5 40Z`); colours as lower-case hex,
shortened where exact (`#FFFFFF` -> `#fff`).
"""
from __future__ import annotations

import math
import re

DECIMALS = 1
SIGNIFICANT = 3
MOST_DECIMALS = 4  # 1e-15 is 0, not 0.000000000000001

# Attributes whose values are numbers (with units, lists or transforms), and those that are colours.
NUMERIC = {"x", "y", "width", "height", "cx", "cy", "r", "rx", "ry", "x1", "y1", "x2", "y2", "fx", "fy", "points",
           "viewBox", "offset", "dx", "dy", "refX", "refY", "markerWidth", "markerHeight", "stdDeviation",
           "stroke-width", "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit", "opacity", "fill-opacity",
           "stroke-opacity", "stop-opacity", "flood-opacity", "font-size", "letter-spacing", "word-spacing",
           "transform", "gradientTransform", "patternTransform", "startOffset", "rotate", "k1", "k2", "k3", "k4"}
COLOURS = {"fill", "stroke", "stop-color", "flood-color", "lighting-color", "color"}
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
PATH_TOKEN = re.compile(r"[MmZzLlHhVvCcSsQqTtAa]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
PATH_ARGS = {"m": 2, "z": 0, "l": 2, "h": 1, "v": 1, "c": 6, "s": 4, "q": 4, "t": 2, "a": 7}
UNITS_PX = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
BASIC_COLOURS = {"black": "#000", "white": "#fff", "red": "#f00", "lime": "#0f0", "blue": "#00f", "yellow": "#ff0",
                 "cyan": "#0ff", "aqua": "#0ff", "magenta": "#f0f", "fuchsia": "#f0f", "silver": "#c0c0c0",
                 "gray": "#808080", "grey": "#808080", "maroon": "#800000", "olive": "#808000", "green": "#008000",
                 "purple": "#800080", "teal": "#008080", "navy": "#000080"}


def number(value: float, precision: int = DECIMALS) -> str:
    """`value` with 3 significant digits and at least `precision` decimals, written shortest."""
    if not math.isfinite(value):
        return "0"
    places = precision
    if value:
        places = min(max(precision, SIGNIFICANT - 1 - math.floor(math.log10(abs(value)))), max(precision, MOST_DECIMALS))
    text = f"{round(value, places):.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def numbers_in(value: str, precision: int) -> str:
    """Every number in an attribute value rounded (units, commas and function names kept)."""
    return NUMBER.sub(lambda m: number(float(m.group()), precision), value)


def path_data(d: str, precision: int) -> str | None:
    """Path data rewritten compactly; None when it is not valid path data."""
    out: list[str] = []
    command = ""
    args: list[str] = []
    position = 0
    d = d.strip()
    while position < len(d):
        if d[position] in " \t\r\n,":
            position += 1
            continue
        if command.lower() == "a" and len(args) % 7 in (3, 4) and d[position] in "01":
            args.append(d[position])  # an arc's flags may be written without separators: "a1 1 0 011 1"
            out.append(" " + d[position])
            position += 1
            continue
        match = PATH_TOKEN.match(d, position)
        if not match:
            return None
        token = match.group()
        position = match.end()
        if token.isalpha():
            if command and len(args) % max(PATH_ARGS[command.lower()], 1) != 0:
                return None
            command = token
            out.append(token)
            args = []
        elif not command or command in "Zz":
            return None
        else:
            args.append(number(float(token), precision))
            out.append(("" if out[-1].isalpha() else " ") + args[-1])
    if command and PATH_ARGS[command.lower()] and (not args or len(args) % PATH_ARGS[command.lower()]):
        return None
    return "".join(out)


def colour(value: str) -> str:
    """Hex colours in lower case, #aabbcc shortened to #abc; other values as given."""
    value = value.strip()
    if re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        value = value.lower()
        if value[1] == value[2] and value[3] == value[4] and value[5] == value[6]:
            return "#" + value[1] + value[3] + value[5]
        return value
    if re.fullmatch(r"#[0-9a-fA-F]{3}", value):
        return value.lower()
    return {"black": "#000", "white": "#fff"}.get(value.lower(), value)


def length_px(length: str | None) -> float | None:
    """A length in px (pt, pc, mm, cm and in converted; no unit is px), or None when it is not one."""
    match = re.fullmatch(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-z]*)\s*", length or "")
    if not match or match.group(2) not in UNITS_PX:
        return None
    return float(match.group(1)) * UNITS_PX[match.group(2)]


def write_value(name: str, value: str, precision: int = DECIMALS) -> str | None:
    """An attribute's value written the one way (path data, colour or numbers, by the attribute's
    name; anything else as given); None when path data is not valid."""
    if name == "d":
        return path_data(value, precision)
    if name in COLOURS:
        return colour(value)
    if name in NUMERIC:
        return numbers_in(value, precision)
    return value


def same_value(name: str, value: str, expected: str) -> bool:
    """Whether two values of attribute `name` mean the same (`red` is `#f00`, `1.0` is `1`)."""
    if name in COLOURS:
        same = lambda v: BASIC_COLOURS.get(colour(v).lower(), colour(v).lower())  # noqa: E731
        return same(value) == same(expected)
    if name in NUMERIC:
        return numbers_in(value, 6) == numbers_in(expected, 6)
    return value.strip() == expected
