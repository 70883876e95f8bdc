"""Rules between fields that the schema does not say well: each a located problem a person can act on.

    train.keep: best        needs train.eval_every (its checkpoints are the evaluated ones)
    train.average           does not go with train.keep: best
    data.sources            replaces data.source; data.mix needs data.sources
    sweep.search            alone in its sweep; a range's low below its high (above 0 with log)

Validation only: nothing heavy.
"""
from __future__ import annotations


def problems(tree: dict) -> list[tuple[tuple, str, bool]]:
    """(path, message, at the key?) for every rule `tree` breaks."""
    train = tree.get("train") if isinstance(tree.get("train"), dict) else {}
    data = tree.get("data") if isinstance(tree.get("data"), dict) else {}
    out = []
    if train.get("keep") == "best" and "eval_every" not in train:
        out.append((("train", "keep"), "best needs train.eval_every: the checkpoints compared are those saved at an "
                                       "evaluation; set train.eval_every, or remove keep", False))
    if train.get("keep") == "best" and "average" in train:
        out.append((("train", "average"), "does not go with train.keep: best (one is the best checkpoint, the other an "
                                          "average of the last ones); remove one", True))
    if "sources" in data and "source" in data:
        out.append((("data", "sources"), "does not go with data.source; put that source in data.sources with a weight, "
                                         "or remove sources", True))
    if "mix" in data and "sources" not in data:
        out.append((("data", "mix"), "mixes data.sources; with one data.source there is nothing to mix; remove it", True))
    names = [entry.get("name") for entry in data.get("sources") or [] if isinstance(entry, dict) and entry.get("name")]
    out += [(("data", "sources"), f"two sources are named {name}; give each its own name", True)
            for name in sorted({n for n in names if names.count(n) > 1})]
    return out + search_problems(tree)


def search_problems(tree: dict) -> list[tuple[tuple, str, bool]]:
    """sweep.search: alone in its sweep; each range's low below its high, above 0 on a log scale."""
    sweep = tree.get("sweep") if isinstance(tree.get("sweep"), dict) else {}
    search = sweep.get("search") if isinstance(sweep.get("search"), dict) else None
    if search is None:
        return []
    out = [(("sweep", key), "does not go with sweep.search (a search chooses its own variants); remove one", True)
           for key in ("grid", "variants") if key in sweep]
    space = search.get("space") if isinstance(search.get("space"), dict) else {}
    for path, dimension in space.items():
        if not isinstance(dimension, dict) or not all(isinstance(dimension.get(k), (int, float)) for k in ("low", "high")):
            continue
        if dimension["low"] >= dimension["high"]:
            out.append((("sweep", "search", "space", path), f"low {dimension['low']} must be below high {dimension['high']}", False))
        elif dimension.get("log") and dimension["low"] <= 0:
            out.append((("sweep", "search", "space", path), f"log: true needs low above 0 (got {dimension['low']})", False))
    return out
