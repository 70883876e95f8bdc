"""Rules between fields that the schema does not say well: each a located problem a person can act on.

    train.keep: best        needs train.eval_every (its checkpoints are the evaluated ones)
    train.average           does not go with train.keep: best
    data.sources            replaces data.source; data.mix needs data.sources

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
    return out
