"""A Markdown reference of every spec field, generated from the schema (docs/spec-reference.md)."""
from __future__ import annotations

import json

from engine.spec import schema as spec_schema


def _type(node: dict) -> str:
    node = spec_schema.deref(node)
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "type" in node:
        kind = node["type"]
        if kind == "array":
            return f"list of {_type(node.get('items', {}))}"
        return " or ".join(kind) if isinstance(kind, list) else kind
    alts = node.get("oneOf") or node.get("anyOf")
    if alts and all("type" in spec_schema.deref(a) or "enum" in spec_schema.deref(a) or "$ref" in a for a in alts):
        return " or ".join(_type(a) for a in alts)
    return "object"


def _bounds(node: dict) -> str:
    node = spec_schema.deref(node)
    parts = []
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in node:
            parts.append(f"{sign} {node[key]}")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    return ", ".join(parts)


def _rows(node: dict, prefix: str, required: set[str], out: list[str], sections: list[tuple[str, dict]]) -> None:
    for name, sub in spec_schema.properties_at(node).items():
        full = prefix + name
        sub_d = spec_schema.deref(sub)
        default = f"`{json.dumps(sub_d['default'])}`" if "default" in sub_d else ("required" if name in required else "")
        desc = sub_d.get("description", "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{full}` | {_type(sub)} | {default} | {_bounds(sub)} | {desc} |")
        items = spec_schema.deref(sub_d.get("items", {})) if sub_d.get("type") == "array" else {}
        if spec_schema.properties_at(sub_d):
            sections.append((full, sub_d))
        elif spec_schema.properties_at(items):  # a list of objects (train.rewards): the fields of each
            sections.append((full + "[]", items))


def markdown_reference() -> str:
    """Every field of the spec language as Markdown tables, one per section."""
    root = spec_schema.schema()
    lines = [
        "# Spec reference",
        "",
        "Generated from `schemas/spec.schema.json` by `engine schema --markdown`; do not edit by hand.",
        "",
        root["description"],
        "",
    ]
    queue: list[tuple[str, dict]] = [("", root)]
    while queue:
        prefix, node = queue.pop(0)
        title = prefix or "top level"
        lines += [f"## `{title}`" if prefix else "## Top level", ""]
        if prefix:
            lines += [node.get("description", ""), ""]
        if node.get("oneOf") and all(set(a) == {"required"} for a in node["oneOf"]):
            keys = [" + ".join(a["required"]) for a in node["oneOf"]]
            lines += [f"Give exactly one of: {', '.join(f'`{k}`' for k in keys)}.", ""]
        lines += ["| field | type | default | bounds | description |", "|---|---|---|---|---|"]
        found: list[tuple[str, dict]] = []
        _rows(node, prefix + "." if prefix else "", set(node.get("required", [])), lines, found)
        lines.append("")
        queue.extend(found)
    lines += ["Keys starting with `x-` are allowed anywhere for your own notes; they are never hashed.", ""]
    return "\n".join(lines)
