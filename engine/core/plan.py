"""Planning: for every node, `cached` or `run`, with reasons a person can act on.

`engine plan` is `engine run` without the running. Planning reads the store and the input files'
digests, and writes nothing but the digest cache.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from engine.core import reasons as why
from engine.core.digests import DigestCache
from engine.core.graph import Graph, Node
from engine.core.payload import Known, key_of, library_versions, make_payload
from engine.core.project import check_tree_inside
from engine.core.stage import libraries_of
from engine.core.store import Entry, Store
from engine.errors import StageError, UsageError

RUN, CACHED = "run", "cached"
MISSING = why.MISSING  # a field on one side of a comparison only


@dataclass
class Step:
    node: Node
    action: str  # RUN or CACHED
    key: str | None  # None until the upstream output it depends on exists (computed at run time)
    payload: dict | None
    reasons: list[dict] = field(default_factory=list)  # engine.core.reasons; rendered for people
    entry: Entry | None = None  # the store entry when cached
    force: bool = False  # rebuild even if the store has it (--force, or downstream of a forced node)
    damaged: str | None = None  # why an existing entry is unusable, when it is


def compute_payload(graph: Graph, node: Node, keys: dict[str, str], entries: dict[str, Entry], digests: DigestCache,
                    recorded: dict | None = None, inputs: dict[str, str] | None = None) -> dict | None:
    """The node's key payload, or None if an output dependency has not been built yet.

    `recorded` (a record's nodes) supplies an output digest whose upstream is not in the store
    but whose key is unchanged since the record: the same key made the same output. Only for
    reporting (status); a run always digests the real upstream output. `inputs` (label -> digest)
    replaces reading the files, for a spec as of a git revision (engine.review.inputs)."""
    stage = graph.registry[node.kind]
    if inputs is None:
        inputs = input_digests(graph, node, digests)  # first: a missing file is an error now
    upstream: dict = {}
    for role, dep in node.inputs.items():  # keyed by role: a node's name never enters a key
        if role in node.output_deps:
            entry, part = entries.get(dep), node.output_deps[role]
            if entry is not None:
                upstream[role] = {part: entry.manifest["result"]["digests"][part]}
                continue
            mine = (recorded or {}).get(node.name, {}).get("payload", {}).get("upstream", {}).get(role)
            if dep in keys and (recorded or {}).get(dep, {}).get("key") == keys[dep] and isinstance(mine, dict) and part in mine:
                upstream[role] = {part: mine[part]}
                continue
            return None
        if dep not in keys:
            return None
        upstream[role] = keys[dep]
    libraries = library_versions(libraries_of(stage, graph.spec_of(node)))
    return make_payload(node.kind, stage.VERSION, node.params, upstream, inputs, libraries)


def input_digests(graph: Graph, node: Node, digests: DigestCache) -> dict[str, str]:
    """{label: content digest} of the files a node reads (labels relative to the project root)."""
    inputs = {}
    spec = graph.spec_of(node)
    for label, source in graph.registry[node.kind].inputs(spec).items():
        if isinstance(source, Known):
            inputs[label] = str(source)
            continue
        try:
            if os.path.isdir(source):  # a folder: every file in it, symlinks followed, must be inside too
                check_tree_inside(spec, source, label)
            inputs[label] = digests.of(source)
        except OSError as exc:
            raise StageError(f"{node.name}: cannot read input {label}: {exc.strerror or exc}; "
                             f"check it exists and is readable by this user") from exc
    return inputs


def select(graph: Graph, until: str | None) -> list[str]:
    """Node names to consider: everything, or `until` and what it needs."""
    for name in [until] if until else []:
        if name not in graph.nodes:
            raise UsageError(f"--until {name}: no such stage; stages are {', '.join(graph.order)}")
    if until is None:
        return list(graph.order)
    wanted = graph.ancestors(until) | {until}
    return [n for n in graph.order if n in wanted]


def make_plan(graph: Graph, store: Store, digests: DigestCache, record: dict | None,
              force: tuple[str, ...] = (), until: str | None = None) -> list[Step]:
    """Steps in topological order (see module docstring)."""
    for name in force:
        if name not in graph.nodes:
            raise UsageError(f"--force {name}: no such stage; stages are {', '.join(graph.order)}")
    forced = set(force)
    previous = (record or {}).get("nodes", {})
    keys: dict[str, str] = {}
    entries: dict[str, Entry] = {}
    steps: dict[str, Step] = {}
    for name in select(graph, until):
        node = graph.nodes[name]
        payload = compute_payload(graph, node, keys, entries, digests)
        key = key_of(payload) if payload is not None else None
        deps = list(dict.fromkeys(node.deps))  # two roles may read one node (evaluate[baseline]): named once
        running_upstream = [d for d in deps if d in steps and steps[d].action == RUN]
        step = Step(node, RUN, key, payload)
        if key is not None:
            keys[name] = key
            entry, damaged = store.check(key, graph.digests_read(name))
            step.entry, step.damaged = entry, damaged
        forced_upstream = [d for d in deps if d in steps and steps[d].force]
        if name in forced or forced_upstream:
            step.force = True
            step.reasons.append(why.forced() if name in forced else why.upstream(forced_upstream))
        elif key is None:
            step.reasons.append(why.upstream(running_upstream))
        elif step.entry is not None:
            step.action = CACHED
            entries[name] = step.entry
        else:
            if step.damaged:
                step.reasons.append(why.damaged(step.damaged))
            step.reasons.extend(explain(previous.get(name), payload, running_upstream, dict(node.inputs)))
        steps[name] = step
    return list(steps.values())


def explain(old: dict | None, new: dict, running_upstream: list[str], inputs: dict[str, str] | None = None) -> list[dict]:
    """Why a node with no cached output must run, compared with its last recorded payload. `inputs`
    (role -> upstream node) names a changed upstream by its node, not by the role it fills."""
    if running_upstream:
        return [why.upstream(running_upstream)]
    if not old or "payload" not in old:
        return [why.no_output()]
    before = old["payload"]
    reasons = []
    for path, (a, b) in sorted(diff_values(before.get("params", {}), new["params"]).items()):
        reasons.append(why.field(path, a, b))
    old_inputs, new_inputs = before.get("inputs", {}), new["inputs"]
    for label in sorted(set(old_inputs) | set(new_inputs)):
        if label not in old_inputs:
            reasons.append(why.input_change(label, "added"))
        elif label not in new_inputs:
            reasons.append(why.input_change(label, "removed"))
        elif old_inputs[label] != new_inputs[label]:
            reasons.append(why.input_change(label, "modified"))
    if before.get("version") != new["version"]:
        reasons.append(why.version(before.get("version"), new["version"]))
    for lib, version in sorted(new["libraries"].items()):
        if before.get("libraries", {}).get(lib) != version:
            reasons.append(why.library(lib, before.get("libraries", {}).get(lib), version))
    if before.get("upstream") != new["upstream"]:
        roles = sorted(k for k in set(before.get("upstream", {})) | set(new["upstream"])
                       if before.get("upstream", {}).get(k) != new["upstream"].get(k))
        changed = list(dict.fromkeys((inputs or {}).get(role, role) for role in roles))
        reasons.append(why.upstream(changed, "changed"))
    return reasons or [why.no_output()]


def diff_values(a, b, prefix: str = "") -> dict[str, tuple]:
    """Flat {dotted.path: (old, new)} of the differences between two nested values.

    Mappings are compared key by key; lists by position (`generate.prompts[1]`).
    """
    out: dict[str, tuple] = {}
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            sub = f"{prefix}.{key}" if prefix else str(key)
            out.update(diff_values(a.get(key, MISSING), b.get(key, MISSING), sub))
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        for i in range(max(len(a), len(b))):
            out.update(diff_values(a[i] if i < len(a) else MISSING, b[i] if i < len(b) else MISSING, f"{prefix}[{i}]"))
    elif a != b or type(a) is bool and type(b) is not bool:
        out[prefix] = (a, b)
    return out
