"""SVG drawings as text a language model can learn: one compact normal form.

A drawing editor's file is mostly not the drawing: Inkscape writes its window size, its
licence block and long `style` strings of default values. `normalise` keeps what is drawn and
writes it the same way every time, so the model spends its tokens on shapes and colours.
The rules (normalisation `VERSION` 1), in order:

1. Parse as XML with the standard library (expat: no DTD is loaded, no external entity is
   read). A file that does not parse, or whose root is not `<svg>`, gives None.
2. Drawn only: comments, processing instructions and the DOCTYPE go; so do `<metadata>`,
   `<title>`, `<desc>`, editor elements and attributes (every namespace but SVG's and
   xlink's: Inkscape, Sodipodi, Illustrator, RDF), `<script>`, `<foreignObject>`, event
   attributes (`on...`), embedded bitmaps and external files (`<image>`; any link that is
   not `#id`), and elements with `display="none"`. A file with a CSS `<style>` sheet gives
   None: its rules would outrank the attributes that styles become (rule 3).
3. Styles become attributes: `style="fill:#f00;stroke:none"` is `fill="#f00" stroke="none"`.
   Vendor properties (`-inkscape-font-specification`) go. A property equal to what the element
   gets anyway (its parent's value for an inherited property such as `fill`, the initial value
   for any property: `fill-opacity="1"`, `stroke-miterlimit="4"`) goes, except inside `<defs>`
   and referenced elements, which a `<use>` may place under other values.
4. Structure: an `id` stays only where something refers to it (`url(#id)`, `href="#id"`);
   a `<defs>` child nothing refers to goes (repeatedly: a gradient used only by an unused one
   goes too); a `<g>` without attributes is replaced by its children (but in a `<switch>`,
   which draws its first child only); an empty `<g>` or `<defs>` goes. `xlink:href` is
   written `href` (SVG 2).
5. Numbers keep 3 significant digits, at least `precision` decimals (`DECIMALS`, 1, by
   default) and at most 4: 1234.5678 -> 1234.6, 12.345 -> 12.3, 0.012345 -> 0.0123,
   2.8e-14 -> 0; written shortest (`10`, `0.5`, never `-0`). Path data is rewritten compactly (`M10 20L30.5 40Z`), colours as
   lower-case hex, shortened where exact (`#FFFFFF` -> `#fff`).
6. The root is `<svg xmlns="http://www.w3.org/2000/svg" viewBox="...">` and its paint (rule 3): a
   `viewBox` is made from `width` and `height` (converted to px: pt, pc, mm, cm, in) when the
   file has none. No width or height: a renderer sizes the drawing from the viewBox.
7. One element per line, no indentation; attributes in the file's order (a style's properties
   where the style was); text inside `<text>` and `<tspan>` kept with its white space collapsed.

How each value is written (rule 5, colours, lengths) is engine.formats.svg_values.

`tokens` counts the lexical tokens of such a text (each digit, each run of letters, each other
character but white space): close to what a BPE that splits digits (SmolLM2's) makes of SVG.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from engine.formats.svg_values import DECIMALS, NUMBER, length_px, number, same_value, write_value

VERSION = 1  # bump when the same file would give another text

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
DROPPED = {"metadata", "title", "desc", "script", "foreignObject", "image", "style"}
CONTAINERS_OF_DEFINITIONS = {"defs", "symbol", "clipPath", "mask", "pattern", "marker", "linearGradient",
                             "radialGradient", "filter"}
TEXT_ELEMENTS = {"text", "tspan", "textPath"}

# Presentation properties: initial value, and whether children inherit it (SVG 1.1, section 6
# and the property index). A property not listed is kept as written.
INHERITED = {
    "fill": "#000", "fill-opacity": "1", "fill-rule": "nonzero", "stroke": "none", "stroke-width": "1",
    "stroke-opacity": "1", "stroke-linecap": "butt", "stroke-linejoin": "miter", "stroke-miterlimit": "4",
    "stroke-dasharray": "none", "stroke-dashoffset": "0", "clip-rule": "nonzero", "visibility": "visible",
    "marker-start": "none", "marker-mid": "none", "marker-end": "none", "font-style": "normal",
    "font-variant": "normal", "font-weight": "normal", "font-stretch": "normal", "letter-spacing": "normal",
    "word-spacing": "normal", "text-anchor": "start", "writing-mode": "lr-tb", "direction": "ltr",
    "color-interpolation": "sRGB", "color-rendering": "auto", "image-rendering": "auto",
    "shape-rendering": "auto", "text-rendering": "auto", "pointer-events": "visiblePainted", "cursor": "auto",
}
NOT_INHERITED = {
    "opacity": "1", "display": "inline", "overflow": "visible", "stop-opacity": "1", "stop-color": "#000",
    "flood-opacity": "1", "flood-color": "#000", "clip-path": "none", "mask": "none", "filter": "none",
    "enable-background": "accumulate", "baseline-shift": "baseline", "text-decoration": "none",
    "dominant-baseline": "auto", "alignment-baseline": "auto", "unicode-bidi": "normal",
}
PROPERTIES = set(INHERITED) | set(NOT_INHERITED) | {"color", "font-family", "font-size", "font", "marker",
                                                    "color-interpolation-filters", "lighting-color", "clip"}
REFERENCE = re.compile(r"url\(\s*['\"]?#([^)'\"\s]+)['\"]?\s*\)")
LEXICAL = re.compile(r"\d|[A-Za-z]+|[^\sA-Za-z\d]")


def tokens(text: str) -> int:
    """Lexical tokens of a text: each digit, each run of letters, each other non-space character."""
    return len(LEXICAL.findall(text))


def _local(name: str) -> tuple[str, str]:
    """(namespace, local name) of an ElementTree tag or attribute name."""
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return "", name


def _view_box(root: ET.Element, precision: int) -> str | None:
    given = root.get("viewBox")
    if given:
        values = NUMBER.findall(given)
        if len(values) == 4 and float(values[2]) > 0 and float(values[3]) > 0:
            return " ".join(number(float(v), precision) for v in values)
        return None
    width, height = length_px(root.get("width")), length_px(root.get("height"))
    if not width or not height or width <= 0 or height <= 0:
        return None
    return f"0 0 {number(width, precision)} {number(height, precision)}"


def _attributes(element: ET.Element) -> list[tuple[str, str]]:
    """The element's SVG attributes in order, its style expanded in place; editor attributes gone."""
    out: list[tuple[str, str]] = []
    for name, value in element.attrib.items():
        namespace, local = _local(name)
        if namespace == XLINK_NS and local == "href":
            out.append(("href", value.strip()))
        elif namespace == XML_NS and local == "space":
            continue
        elif namespace not in ("", SVG_NS) or local.lower().startswith("on") or local in ("version", "baseProfile"):
            continue
        elif local == "style":
            for declaration in value.split(";"):
                prop, colon, val = declaration.partition(":")
                prop, val = prop.strip().lower(), val.strip()
                if colon and prop and val and not prop.startswith("-"):
                    out.append((prop, val))
        else:
            out.append((local, value.strip()))
    merged: dict[str, str] = {}
    for name, value in out:  # a style property outranks the attribute of the same name
        merged.pop(name, None)
        merged[name] = value
    return list(merged.items())


def _drawn(element: ET.Element) -> ET.Element | None:
    """A copy of the element's tree with what is not drawn removed (rule 2); None if none is left."""
    namespace, tag = _local(element.tag) if isinstance(element.tag, str) else ("", "")
    if not isinstance(element.tag, str) or namespace not in ("", SVG_NS) or tag in DROPPED:
        return None
    attributes = dict(_attributes(element))
    if attributes.get("display", "").strip() == "none":
        return None
    href = attributes.get("href")
    if href is not None and not href.startswith("#"):
        attributes.pop("href")  # an external file or a data: URL (an embedded bitmap)
    copy = ET.Element(tag, attributes)
    copy.text = element.text if tag in TEXT_ELEMENTS else None
    for child in element:
        kept = _drawn(child)
        if kept is not None:
            kept.tail = child.tail if tag in TEXT_ELEMENTS else None
            copy.append(kept)
        elif tag in TEXT_ELEMENTS and child.tail:
            copy.text = (copy.text or "") + child.tail  # keep the text around a dropped child
    return copy


def _references(element: ET.Element) -> set[str]:
    found: set[str] = set()
    for node in element.iter():
        for name, value in node.attrib.items():
            if name == "href" and value.startswith("#"):
                found.add(value[1:])
            found.update(REFERENCE.findall(value))
    return found


def _prune_definitions(root: ET.Element) -> None:
    """Drop <defs> children nothing refers to, until none is left to drop."""
    while True:
        used = _references(root)
        removed = False
        for defs in [e for e in root.iter() if e.tag == "defs"]:
            for child in list(defs):
                if child.get("id") not in used:
                    defs.remove(child)
                    removed = True
        if not removed:
            return


def _simplify(element: ET.Element, inherited: dict, used: set[str], definition: bool) -> None:
    """Rules 3 and 4 for the children of `element`, whose inherited properties are `inherited`."""
    for child in list(element):
        in_definition = definition or child.tag in CONTAINERS_OF_DEFINITIONS or child.get("id") in used
        if child.get("id") is not None and child.get("id") not in used:
            del child.attrib["id"]
        mine = dict(inherited)
        for name in list(child.attrib):
            if name not in PROPERTIES:
                continue
            value = child.attrib[name]
            if name in NOT_INHERITED and same_value(name, value, NOT_INHERITED[name]):
                del child.attrib[name]  # the initial value, whatever the context
                continue
            if name in INHERITED and not in_definition and (value == "inherit" or same_value(name, value, inherited[name])):
                del child.attrib[name]  # what the parent gives (a <use> may give a definition another)
                continue
            if name in INHERITED:
                mine[name] = value
        _simplify(child, mine, used, in_definition)
        if child.tag in ("g", "defs") and len(child) == 0 and not (child.text or "").strip():
            element.remove(child)
        elif child.tag == "g" and not child.attrib and element.tag != "switch":  # a switch draws its first child only
            index = list(element).index(child)
            element.remove(child)
            for offset, grandchild in enumerate(list(child)):
                element.insert(index + offset, grandchild)


def parse(svg: str) -> ET.Element | None:
    """The XML tree of a text, or None when it is not well-formed."""
    try:
        return ET.fromstring(svg)
    except (ET.ParseError, ValueError):
        return None


def normalise(svg: str | ET.Element, precision: int = DECIMALS) -> str | None:
    """The drawing (a text, or its tree from `parse`, which is not changed) in normal form (see
    the module docstring), or None when it cannot be."""
    root = parse(svg) if isinstance(svg, str) else svg
    if root is None:
        return None
    namespace, tag = _local(root.tag)
    if tag != "svg" or namespace not in ("", SVG_NS):
        return None
    if any(isinstance(e.tag, str) and _local(e.tag)[1] == "style" for e in root.iter()):
        return None
    view_box = _view_box(root, precision)
    drawn = _drawn(root)
    if view_box is None or drawn is None:
        return None
    for node in drawn.iter():  # values first: a property's default is compared in its written form
        node.attrib = {k: v for k, v in ((k, write_value(k, v, precision)) for k, v in node.attrib.items())
                       if v is not None}
    drawn.attrib = {k: v for k, v in drawn.attrib.items() if k in PROPERTIES}  # the root keeps its paint only
    _prune_definitions(drawn)
    initial = {name: write_value(name, value, precision) for name, value in INHERITED.items()}
    holder = ET.Element("holder")
    holder.append(drawn)
    _simplify(holder, initial, _references(drawn), False)
    if len(drawn) == 0:
        return None
    paint = "".join(f' {name}="{_escape(value, True)}"' for name, value in drawn.attrib.items())
    lines = [f'<svg xmlns="{SVG_NS}" viewBox="{view_box}"{paint}>']
    for child in drawn:
        _write(child, lines)
    lines.append("</svg>")
    return "\n".join(lines)


def _escape(text: str, quote: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text


def _write(element: ET.Element, lines: list[str]) -> None:
    attributes = "".join(f' {name}="{_escape(value, True)}"' for name, value in element.attrib.items())
    if element.tag in TEXT_ELEMENTS:  # text and its spans on one line, white space collapsed
        lines.append(_inline(element))
        return
    if len(element) == 0:
        lines.append(f"<{element.tag}{attributes}/>")
        return
    lines.append(f"<{element.tag}{attributes}>")
    for child in element:
        _write(child, lines)
    lines.append(f"</{element.tag}>")


def _inline(element: ET.Element) -> str:
    attributes = "".join(f' {name}="{_escape(value, True)}"' for name, value in element.attrib.items())
    inner = _escape(" ".join((element.text or "").split()))
    for child in element:
        inner += _inline(child) + _escape(" ".join((child.tail or "").split()))
    return f"<{element.tag}{attributes}>{inner}</{element.tag}>"
