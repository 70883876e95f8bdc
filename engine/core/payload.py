"""What a stage's key is made of. This module is the definition; change it with care.

key = sha256(canonical_json(payload)), where payload is:

    kind       the stage kind ("train"): different stages never share outputs
    version    the stage implementation's VERSION, bumped when the same inputs would now give
               different outputs
    params     the resolved spec fields this stage reads, and only those (defaults written in,
               so changing a default changes the key), less the fields it declares in IGNORES
               (read, but without effect on its output: train.log_every)
    upstream   per input role (never the node's name): the upstream's key, or for an output
               dependency the digest of the named part of its output (data depends on the
               tokenizer's content, not the weights)
    inputs     content digests of the files and directories the stage reads, labelled by their
               path relative to the project root (engine/core/project.py: the same in every
               clone), or by package and file for corpus files inside an installed package
    libraries  major.minor versions of the libraries whose behaviour the outputs depend on

Left out, on purpose:
    description, runtime, `x-` keys   never read by a stage (runtime is where, not what)
    comments, key order, quoting      gone after loading; numbers are compared as values
    the node's name                   two nodes that would compute the same thing share it
    absolute paths, mtimes            moving the project or touching a file keeps every hit
    the spec's file name              renaming a spec keeps its outputs

Nothing is ever replaced by a random value: what cannot be hashed is an error.
"""
from __future__ import annotations

import os
import re
import sys
from functools import lru_cache

from engine.core.canonical import sha256_of


class Known(str):
    """An input already identified by its content (a hub commit sha, a package version), not a path."""


@lru_cache(maxsize=1)
def _installed() -> dict[str, str]:
    """Normalised distribution name -> version, from the `*.dist-info` folder names on sys.path.

    One directory listing per path entry; `importlib.metadata.version` costs ~2 ms a call.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                dist, version = name[: -len(".dist-info")].rsplit("-", 1)
                found.setdefault(_normal(dist), version)
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """`{"transformers": "5.24"}`: major.minor of each installed library ("absent" if not installed)."""
    out = {}
    for name in names:
        version = _installed().get(_normal(name))
        if version is None:  # an unusual install layout (egg, editable finder): ask properly
            from importlib import metadata

            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                out[name] = "absent"
                continue
        out[name] = ".".join(version.split("+")[0].split(".")[:2])
    return out


def make_payload(kind: str, version: int, params: dict, upstream: dict, inputs: dict, libraries: dict) -> dict:
    return {"kind": kind, "version": version, "params": params, "upstream": upstream,
            "inputs": inputs, "libraries": libraries}


def key_of(payload: dict) -> str:
    return sha256_of(payload)
