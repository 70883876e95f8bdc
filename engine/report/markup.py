"""HTML pieces that escape by default: text from records and samples is never trusted markup.

`Html` marks a string that is already markup (built here from escaped parts); anything else put
into a table or a tag is passed through `html.escape` first.
"""
from __future__ import annotations

import html
from typing import Iterable


class Html(str):
    """Markup that is safe to insert as it is."""


def esc(value) -> Html:
    """`value` as markup: unchanged when it is `Html`, else escaped text."""
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


def join(parts: Iterable) -> Html:
    return Html("".join(esc(p) for p in parts))


def tag(name: str, content="", **attrs) -> Html:
    """`<name attr="v">content</name>`; `class_` for the class attribute; content escaped unless Html."""
    attributes = "".join(f' {k.rstrip("_").replace("_", "-")}="{html.escape(str(v), quote=True)}"'
                         for k, v in attrs.items() if v is not None)
    return Html(f"<{name}{attributes}>{esc(content)}</{name}>")


def table(headers: list, rows: list[list], class_: str | None = None, row_classes: list[str | None] | None = None,
          caption=None) -> Html:
    """A table; each cell escaped unless Html."""
    head = tag("tr", join(tag("th", h) for h in headers))
    body = join(tag("tr", join(tag("td", c) for c in row), class_=(row_classes or [None] * len(rows))[i])
                for i, row in enumerate(rows))
    cap = tag("caption", caption) if caption is not None else ""
    return tag("table", join([cap, tag("thead", head), tag("tbody", body)]), class_=class_)


def number(value) -> str:
    """A metric as a person reads it: 4 significant digits for floats, digits grouped for integers."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
