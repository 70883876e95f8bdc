"""Does a rebuilt entry reproduce the stored one? Its files by sha256, its metrics against the
record, and, where not, the causes that can be seen.

    stored entry S ──┐
                     ├─ files: sha256 of every output file (the manifests'); a stored file whose
    rebuild R1 ──────┤         content no longer matches its own manifest is named as damaged
    (this machine)   ├─ metrics: every metric against the record (the stored entry's where the
                     │           record is not current for the stage)
    rebuild R2 ──────┘  only when R1 differs: deterministic algorithms on, one thread

What is left out, and why: speed numbers (`tokens_per_s`, the Trainer's `*_runtime`,
`*_per_second`) measure the machine, not the result; they are dropped from metrics and from JSON
files before comparing, and a file that differs only in them counts as the same.

Causes, from what the three differ in (`causes`):

    nondeterministic kernels   R1 != S but R2 == S: it differs only without deterministic mode
    thread count               the same, where R1 ran on more than one thread
    unseeded step              R2 != R1: two rebuilds here differ, the second in deterministic mode
    device or dtype            the entry's facts (device, precision, kernels) differ from R1's
    library versions           the record was made with other versions than today's key names
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.entry import Entry

TIMING = re.compile(r"(^|_)(runtime|per_s|per_second|wall_s|seconds|elapsed)$")
FACTS = ("device", "precision", "kernels", "compiled", "processes", "nodes", "strategy", "micro_batch", "accumulation")
LARGEST_JSON = 64 << 20  # a bigger JSON file is compared by digest alone


@dataclass(frozen=True)
class FileDiff:
    path: str  # inside the entry's out/
    change: str  # "differs" | "only stored" | "only rebuilt" | "damaged"
    detail: str  # by how much, as far as the file's form tells


@dataclass(frozen=True)
class MetricDiff:
    name: str  # dotted inside the stage's metrics (`reference.parses`)
    recorded: object
    rebuilt: object

    @property
    def delta(self) -> float | None:
        numbers = _number(self.recorded), _number(self.rebuilt)
        return None if None in numbers else numbers[1] - numbers[0]

    def describe(self) -> str:
        delta = self.delta
        if delta is None:
            return f"{self.name} {self.recorded!r} -> {self.rebuilt!r}"
        base = abs(_number(self.recorded))
        share = f", {delta / base:+.2%}" if base else ""
        return f"{self.name} {self.recorded:.6g} -> {self.rebuilt:.6g} ({delta:+.3g}{share})"


@dataclass
class Comparison:
    files: list[FileDiff] = field(default_factory=list)
    metrics: list[MetricDiff] = field(default_factory=list)
    timing_only: list[str] = field(default_factory=list)  # files that differ only in speed numbers

    @property
    def identical(self) -> bool:
        return not self.files and not self.metrics


def compare(stored: Entry, rebuilt: Entry, recorded_metrics: dict, damaged: list[str] = ()) -> Comparison:
    """What differs between a stored entry (its files checked as `damaged` by the caller's
    rehash: `Store.verify`'s problems) and its rebuild; metrics against `recorded_metrics`."""
    out = Comparison()
    broken = {problem.split(":", 1)[0]: problem.split(":", 1)[1].strip() for problem in damaged if ":" in problem}
    before, after = stored.manifest["files"], rebuilt.manifest["files"]
    for rel in sorted(set(before) | set(after)):
        if rel in broken:
            out.files.append(FileDiff(rel, "damaged", f"the stored file {broken[rel]} (changed after it was built; "
                                                      f"`engine cache verify` moves it aside)"))
        elif rel not in after:
            out.files.append(FileDiff(rel, "only stored", "the rebuild did not write it"))
        elif rel not in before:
            out.files.append(FileDiff(rel, "only rebuilt", "the stored entry lacks it"))
        elif before[rel]["sha256"] != after[rel]["sha256"]:
            detail = file_difference(stored.out / rel, rebuilt.out / rel, before[rel]["size"], after[rel]["size"])
            if detail is None:
                out.timing_only.append(rel)
            else:
                out.files.append(FileDiff(rel, "differs", detail))
    now = rebuilt.manifest.get("result", {}).get("metrics", {})
    flat_then, flat_now = _flat(recorded_metrics), _flat(now)
    for name in sorted(set(flat_then) | set(flat_now)):
        if TIMING.search(name.rsplit(".", 1)[-1]) or name.endswith("tokens_per_s"):
            continue
        a, b = flat_then.get(name, "(absent)"), flat_now.get(name, "(absent)")
        if a != b and not (_number(a) is not None and _number(b) is not None and math.isnan(a) and math.isnan(b)):
            out.metrics.append(MetricDiff(name, a, b))
    return out


def file_difference(stored: Path, rebuilt: Path, size_a: int, size_b: int) -> str | None:
    """How two files with different digests differ, as far as their form tells; None when they
    are JSON that differs only in speed numbers."""
    suffix = stored.suffix
    if suffix in (".json", ".jsonl") and max(size_a, size_b) <= LARGEST_JSON:
        try:
            a, b = _json_of(stored), _json_of(rebuilt)
        except (OSError, ValueError):
            a = b = None
        if a is not None:
            changed = _first_changes(_drop_timing(a), _drop_timing(b))
            if not changed:
                return None
            return "; ".join(changed)
    if suffix == ".safetensors":
        detail = _tensor_difference(stored, rebuilt)
        if detail:
            return detail
    return f"{size_a:,} bytes stored, {size_b:,} rebuilt" if size_a != size_b else f"same size ({size_a:,} bytes), other content"


def causes(stored: Entry, first: Entry, first_same: bool, second: Entry | None, second_same: bool | None,
           rebuilds_same: bool | None, threads: int, drift: dict[str, tuple]) -> list[dict]:
    """The causes that can be seen (module docstring), each {"cause", "detail"}; `*_same`: whether
    a rebuild reproduces the stored entry, and whether the two rebuilds equal each other."""
    found = []
    facts_then, facts_now = stored.manifest["result"].get("facts", {}), first.manifest["result"].get("facts", {})
    moved = [f"{k} {facts_then.get(k)} -> {facts_now.get(k)}" for k in FACTS
             if k in facts_then and k in facts_now and facts_then[k] != facts_now[k]]
    if moved:
        found.append({"cause": "device or dtype", "detail": "stored entry -> this rebuild: " + ", ".join(moved)})
    if drift:
        found.append({"cause": "library versions", "detail": "the record was made with "
                      + ", ".join(f"{name} {old} (now {new})" for name, (old, new) in sorted(drift.items()))})
    if first_same or second is None:
        return found
    if second_same:
        found.append({"cause": "nondeterministic kernels", "detail": "rebuilt with deterministic algorithms on one "
                      "thread it reproduces the stored entry: it differs only without deterministic mode; set "
                      "runtime.num_threads: 1 and run on the same device to reproduce it"})
        if threads > 1:
            found.append({"cause": "thread count", "detail": f"the first rebuild ran on {threads} threads, the "
                          "deterministic one on 1: summing in another order moves the last bits"})
    elif rebuilds_same is False:
        found.append({"cause": "unseeded step", "detail": "two rebuilds here differ from each other, the second with "
                      "deterministic algorithms on one thread: some randomness is not drawn from the spec's seed"
                      + (f" (or the {threads} threads of the first rebuild changed it)" if threads > 1 else "")})
    elif not found:
        found.append({"cause": "none visible", "detail": "this machine rebuilds it the same way twice (also in "
                      "deterministic mode), so the stored output is not what this code makes from these inputs "
                      "here: it was changed after it was built, or made by another machine or version the record "
                      "does not show"})
    return found


def deterministic_mode():
    """A context: torch's deterministic algorithms, one thread, cuDNN without autotuning; restored
    after. Imports torch (only a rebuild that differed comes here)."""
    import contextlib
    import os

    import torch

    @contextlib.contextmanager
    def mode():
        before = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
                  torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"  # what cuBLAS needs to be deterministic
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(before[0])
            torch.set_num_threads(before[1])
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2], before[3]
            if before[4] is None:
                os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
            else:
                os.environ["CUBLAS_WORKSPACE_CONFIG"] = before[4]

    return mode()


def threads_now() -> int:
    """torch's intra-op thread count (torch is loaded by then: a stage was rebuilt)."""
    import torch

    return torch.get_num_threads()


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _flat(metrics: dict, prefix: str = "") -> dict:
    out = {}
    for name, value in (metrics or {}).items():
        dotted = f"{prefix}.{name}" if prefix else str(name)
        out.update(_flat(value, dotted) if isinstance(value, dict) else {dotted: value})
    return out


def _json_of(path: Path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def _drop_timing(value):
    if isinstance(value, dict):
        return {k: _drop_timing(v) for k, v in value.items() if not TIMING.search(str(k)) and k != "tokens_per_s"}
    if isinstance(value, list):
        return [_drop_timing(v) for v in value]
    return value


def _first_changes(a, b, limit: int = 3) -> list[str]:
    """Up to `limit` `path: old -> new` between two JSON values (engine.core.plan.diff_values)."""
    from engine.core.plan import diff_values

    changed = diff_values(a, b)
    shown = [f"{path or '(whole file)'} {_short(old)} -> {_short(new)}" for path, (old, new) in list(changed.items())[:limit]]
    return shown + ([f"and {len(changed) - limit} more values"] if len(changed) > limit else [])


def _short(value) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _tensor_difference(stored: Path, rebuilt: Path) -> str | None:
    """The largest absolute difference over the tensors of two safetensors files (read as numpy
    arrays: no pickle), or which tensors differ in name or shape; None if they cannot be read."""
    try:
        from safetensors.numpy import load_file

        a, b = load_file(str(stored)), load_file(str(rebuilt))
    except Exception:  # noqa: BLE001 - a damaged or foreign file: fall back to its size
        return None
    if set(a) != set(b):
        return f"other tensors: {', '.join(sorted(set(a) ^ set(b))[:3])}"
    worst, where, count = 0.0, "", 0
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            return f"tensor {name} has shape {a[name].shape} stored, {b[name].shape} rebuilt"
        gap = float(abs(a[name].astype("float64") - b[name].astype("float64")).max()) if a[name].size else 0.0
        count += gap > 0
        if gap > worst:
            worst, where = gap, name
    return f"{count} of {len(a)} tensors differ; largest absolute difference {worst:.3g} (in {where})"
