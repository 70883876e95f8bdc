"""svg: is each sample a drawing, and is it one of the training drawings?

A sample's drawing is the SVG document in its prompt and completion together (from the first
`<svg` to the first `</svg>` after it; none when there is no `<svg`). Per sample:
  parses    it is well-formed XML whose root is `<svg>`
  renders   resvg (a Rust SVG renderer; PyPI `resvg-py`) draws it into a picture with at least one
            pixel that is not transparent, fitted into THUMBNAIL x THUMBNAIL px. Text is not drawn
            (no system fonts are loaded, so every machine gets the same pixels) and no file is
            read: a link that is not `#id` or `data:` is removed before drawing
  elements  shapes drawn: path, rect, circle, ellipse, line, polyline, polygon, text, use, image
  colours   distinct colours named by fill, stroke, stop-color and flood-color (attributes or
            style; `none`, `url(#...)`, `currentColor` and `inherit` are not colours)
  nearest   the pixel distance to the nearest training drawing: both drawn on white, fitted and
            centred in DISTANCE_SIZE x DISTANCE_SIZE px, the mean absolute difference of their RGB
            values in [0, 1] (0 the same picture, 1 black against white); the drawing is named
  copy      nearest <= COPY_DISTANCE: a picture of a training drawing, whatever its text (the
            text `copy` check finds verbatim passages)
Metrics: svg_parse_rate, svg_render_rate, svg_copy_rate (shares of all samples), svg_elements and
svg_colours (means over the samples that parse), svg_nearest_distance (mean over those that
render), svg_novel_valid_rate (the share that render and are not a copy). Each rendered sample's picture is saved in the generate stage's output as
`thumbnails/<prompt>-<sample>.png` (the report shows them).
"""
from __future__ import annotations

VERSION = 2  # (2: svg_novel_valid_rate) bump when the same samples would get other results
METRICS = ("svg_parse_rate", "svg_render_rate", "svg_elements", "svg_colours", "svg_nearest_distance", "svg_copy_rate",
           "svg_novel_valid_rate")

import re
import xml.etree.ElementTree as ET
from functools import lru_cache

THUMBNAIL = 128
DISTANCE_SIZE = 32
# Measured once by hand (no script in bench/ yet) on the 1,005 clip-art drawings of up to 512 tokens that render: 346 have another within
# 0.005 (the same picture under another name, stars that differ by a point or two), 80 more within
# 0.01; drawings of one icon set that differ in a detail sit 0.01 to 0.03 apart.
COPY_DISTANCE = 0.005
SHAPES = {"path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "use", "image"}
PAINT = ("fill", "stroke", "stop-color", "flood-color")
NOT_COLOURS = {"none", "currentcolor", "inherit", "transparent", ""}


def document(text: str) -> str | None:
    """The SVG document in a text: from its first `<svg` to the first `</svg>` after it (or the end)."""
    start = text.find("<svg")
    if start < 0:
        return None
    end = text.find("</svg>", start)
    return text[start:] if end < 0 else text[start:end + len("</svg>")]


def parse(svg: str | None) -> ET.Element | None:
    """The root element when `svg` is well-formed XML with an <svg> root, else None."""
    if not svg:
        return None
    try:
        root = ET.fromstring(svg)
    except (ET.ParseError, ValueError):
        return None
    return root if _local(root.tag) == "svg" else None


def _local(name) -> str:
    return name.rsplit("}", 1)[-1] if isinstance(name, str) else ""


def elements(root: ET.Element) -> int:
    return sum(1 for e in root.iter() if _local(e.tag) in SHAPES)


def colours(root: ET.Element) -> set[str]:
    from engine.formats.svg_values import colour

    found = set()
    for element in root.iter():
        values = [element.get(name, "") for name in PAINT]
        for declaration in element.get("style", "").split(";"):
            prop, _, value = declaration.partition(":")
            if prop.strip() in PAINT:
                values.append(value)
        for value in values:
            value = value.strip()
            if value.lower() not in NOT_COLOURS and not value.startswith("url("):
                found.add(colour(value).lower())
    return found


def render(root: ET.Element, size: int):
    """The drawing as an RGBA PIL image fitted into size x size, or None when resvg cannot draw it."""
    import io

    import resvg_py
    from PIL import Image

    safe = _without_links(root)
    try:
        png = resvg_py.svg_to_bytes(svg_string=ET.tostring(safe, encoding="unicode"), width=size, height=size,
                                    skip_system_fonts=True)
    except Exception:  # noqa: BLE001 - resvg reports every failure as an exception; all mean "cannot draw"
        return None
    return Image.open(io.BytesIO(bytes(png))).convert("RGBA")


def _without_links(root: ET.Element) -> ET.Element:
    """A copy with every link to a file or URL removed (only `#id` and `data:` stay)."""
    import copy

    safe = copy.deepcopy(root)
    for element in safe.iter():
        for name in [n for n in element.attrib if _local(n) == "href"]:
            if not element.attrib[name].strip().startswith(("#", "data:")):
                del element.attrib[name]
    return safe


def drawn(image) -> bool:
    return image is not None and image.getchannel("A").getbbox() is not None


def pixels(image, size: int = DISTANCE_SIZE):
    """RGB values in [0, 1] on white, the picture fitted and centred in size x size (numpy, flat)."""
    import numpy as np
    from PIL import Image

    picture = image.copy()
    picture.thumbnail((size, size))
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    canvas.alpha_composite(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
    return np.asarray(canvas.convert("RGB"), dtype=np.float32).reshape(-1) / 255.0


def reference(texts: list[str]):
    """(pictures as a matrix, one row each, and their names) of the training drawings that render."""
    import numpy as np

    pictures, names = [], []
    for text in texts:
        root = parse(document(text))
        image = render(root, DISTANCE_SIZE) if root is not None else None
        if drawn(image):
            pictures.append(pixels(image))
            names.append(re.sub(r"\s+", " ", text[: text.find("<svg")].strip())[:80] or text[:80])
    return (np.stack(pictures) if pictures else np.zeros((0, DISTANCE_SIZE * DISTANCE_SIZE * 3), np.float32)), names


@lru_cache(maxsize=1)
def _reference_of(texts: tuple[str, ...]):
    """`reference` of the same training texts once: a sample scored alone (generate.select) calls `run` per sample."""
    return reference(list(texts))


def judge(text: str, pictures=None, names=()) -> tuple[dict, object]:
    """One sample's results (see the module docstring) and its picture (None unless it renders)."""
    root = parse(document(text))
    result = {"parses": root is not None, "renders": False, "elements": 0, "colours": 0}
    if root is None:
        return result, None
    result.update(elements=elements(root), colours=len(colours(root)))
    image = render(root, THUMBNAIL)
    if not drawn(image):
        return result, None
    result["renders"] = True
    if pictures is not None and len(pictures):  # drawn small, exactly as the training drawings were
        distances = abs(pictures - pixels(render(root, DISTANCE_SIZE))).mean(axis=1)
        best = int(distances.argmin())
        result.update(nearest=round(float(distances[best]), 4), nearest_source=names[best],
                      copy=bool(distances[best] <= COPY_DISTANCE))
    return result, image


def run(samples: list[dict], context) -> dict:
    pictures, names = _reference_of(tuple(context.training_texts()))
    thumbnails = context.out / "thumbnails"
    results = []
    for sample in samples:
        result, image = judge(sample["prompt"] + sample["completion"], pictures, names)
        if image is not None:
            thumbnails.mkdir(parents=True, exist_ok=True)
            _on_white(image).save(thumbnails / f"{sample['prompt_index']}-{sample['sample']}.png", optimize=True)
            result["thumbnail"] = f"thumbnails/{sample['prompt_index']}-{sample['sample']}.png"
        sample["svg"] = result
        results.append(result)
    n = len(results) or 1
    parsed = [r for r in results if r["parses"]]
    rendered = [r for r in results if "nearest" in r]
    mean = lambda rows, key: sum(r[key] for r in rows) / len(rows) if rows else 0.0  # noqa: E731
    return {"svg_parse_rate": len(parsed) / n, "svg_render_rate": sum(r["renders"] for r in results) / n,
            "svg_elements": mean(parsed, "elements"), "svg_colours": mean(parsed, "colours"),
            "svg_nearest_distance": mean(rendered, "nearest"),
            "svg_copy_rate": sum(r.get("copy", False) for r in results) / n,
            "svg_novel_valid_rate": sum(r["renders"] and not r.get("copy", False) for r in results) / n}


def _on_white(image):
    from PIL import Image

    canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
    canvas.alpha_composite(image)
    return canvas.convert("RGB")
