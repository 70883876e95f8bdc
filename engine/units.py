"""Quantities as a person reads them, for messages at every layer (core, application, CLI)."""
from __future__ import annotations


def size_text(n: float) -> str:
    """`80 B`, `1.2 MB`, `3.4 GB` (decimal units, as transfer speeds are given)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
