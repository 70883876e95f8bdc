"""A `sweep.search`'s study: every trial's values, metric and state, kept in the store as JSON and
replayed into an in-memory Optuna study to choose the next trial (no pickles, no database).

    <store>/searches/<study key>.json     {"trials": [{"number", "name", "params", "state", "value"}, ...]}

The study key is the sha256 of the spec as resolved (defaults written in), less what changes no
trial's result: `name`, `description`, `runtime`, `x-` notes and `sweep.search.trials` (so raising
it continues the search). Trial n's values are a pure function of the seed, n and the results of
the trials before it: a fresh sampler seeded with seed + n is given those results and asked once.
So a search stopped after trial 2 chooses trial 3 when continued exactly as an uninterrupted one
would, and `plan` can show every trial that waits on no result: all of them for `random`, the
random start of `tpe` (`startup`), else the next one once every trial before it is done.

    states: complete (with its metric value), fail (its stage failed; the search goes on)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.canonical import canonical_json, sha256_of

VERSION = 1  # of the study file; another is read as no study (the trials' stages stay cached)
LEFT_OUT = ("name", "description", "runtime")


def study_key(spec) -> str:
    """What the study is of (module docstring)."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("x-"))}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    tree = {k: v for k, v in plain(spec.tree).items() if k not in LEFT_OUT}
    tree["sweep"] = {**tree["sweep"], "search": {k: v for k, v in tree["sweep"]["search"].items() if k != "trials"}}
    return sha256_of({"study": VERSION, "spec": tree})


def label(number: int) -> str:
    return f"trial-{number}"


@dataclass
class Study:
    path: Path  # <store>/searches/<key>.json
    key: str
    method: str  # tpe | random
    trials: int  # how many in all
    startup: int  # tpe: random trials before the model
    space: dict  # dotted path -> {low, high, log} or [choices]
    mode: str  # min | max
    seed: int
    done: dict[int, dict] = field(default_factory=dict)  # number -> its finished trial
    chosen: list[tuple[int, dict]] = field(default_factory=list)  # (number, params) of the unfinished ones chosen now
    same: dict[int, int] = field(default_factory=dict)  # an unfinished trial -> an earlier one with the same values

    def variants(self) -> list[tuple[str, dict]]:
        """(label, values) of the trials that are variants of the graph: complete ones and the chosen
        unfinished ones (a failed trial, or one with an earlier trial's values, is not)."""
        out = [(label(n), t["params"]) for n, t in sorted(self.done.items()) if t["state"] == "complete" and "same_as" not in t]
        return out + [(label(n), params) for n, params in self.chosen if n not in self.same]

    def records(self) -> list[dict]:
        """Every finished trial, in order: what the record keeps and `engine compare` ranks."""
        return [self.done[n] for n in sorted(self.done)]

    def finished(self) -> bool:
        return len(self.done) >= self.trials


def open_study(spec, store_root: Path) -> Study:
    """The study of a spec's search (an empty one when the store has none, or an unreadable one),
    with the unfinished trials that can be chosen now."""
    search = spec.get("sweep.search")
    key = study_key(spec)
    study = Study(store_root / "searches" / f"{key}.json", key, search["method"], search["trials"], search["startup"],
                  dict(search["space"]), spec.get("sweep.mode"), spec.get("seed"))
    try:
        saved = json.loads(study.path.read_text(encoding="utf-8"))
        if saved.get("version") == VERSION:
            study.done = {int(t["number"]): t for t in saved["trials"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no study yet, or a damaged file: start again (finished trials' stages are still cached)
    choose(study)
    return study


def choose(study: Study) -> None:
    """Fill `study.chosen` with the unfinished trials whose values wait on no result (module docstring)."""
    study.chosen, study.same = [], {}
    seen = {canonical_json(t["params"]): n for n, t in study.done.items() if t["state"] == "complete"}
    for number in range(1, study.trials + 1):
        if number in study.done:
            continue
        waits = study.method == "tpe" and number > study.startup and any(n not in study.done for n in range(1, number))
        if waits:
            break
        params = ask(study, number)
        study.chosen.append((number, params))
        first = seen.setdefault(canonical_json(params), number)
        if first != number:
            study.same[number] = first


def ask(study: Study, number: int) -> dict:
    """Trial `number`'s values: a sampler seeded with seed + number, given the trials before it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spaces = distributions(study.space)
    if study.method == "tpe":
        sampler = optuna.samplers.TPESampler(seed=study.seed + number, n_startup_trials=study.startup)
    else:
        sampler = optuna.samplers.RandomSampler(seed=study.seed + number)
    replay = optuna.create_study(direction="minimize" if study.mode == "min" else "maximize", sampler=sampler)
    for n in sorted(study.done):
        if n >= number:
            break
        trial = study.done[n]
        complete = trial["state"] == "complete"
        replay.add_trial(optuna.trial.create_trial(
            params=trial["params"], distributions=spaces, value=trial["value"] if complete else None,
            state=optuna.trial.TrialState.COMPLETE if complete else optuna.trial.TrialState.FAIL))
    return dict(replay.ask(spaces).params)


def distributions(space: dict) -> dict:
    """Optuna's distribution of each dotted path: a list is categorical; {low, high} integer when
    both are integers, else float; `log` for a log scale."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for path, dimension in space.items():
        if isinstance(dimension, (list, tuple)):
            out[path] = CategoricalDistribution(list(dimension))
        elif all(isinstance(dimension[k], int) and not isinstance(dimension[k], bool) for k in ("low", "high")):
            out[path] = IntDistribution(dimension["low"], dimension["high"], log=bool(dimension.get("log")))
        else:
            out[path] = FloatDistribution(float(dimension["low"]), float(dimension["high"]), log=bool(dimension.get("log")))
    return out


def finish(study: Study, number: int, state: str, value: float | None = None, **more) -> None:
    """Record trial `number` as finished (complete with its value, or failed)."""
    params = dict(next(p for n, p in study.chosen if n == number))
    study.done[number] = {"number": number, "name": label(number), "params": params, "state": state, "value": value, **more}


def save(study: Study) -> None:
    """Write the study file atomically (temp then rename): a crash leaves the old one or the new one."""
    study.path.parent.mkdir(parents=True, exist_ok=True)
    temporary = study.path.with_suffix(f".tmp.{os.getpid()}")
    temporary.write_text(json.dumps({"version": VERSION, "key": study.key, "method": study.method, "space": study.space,
                                     "mode": study.mode, "seed": study.seed, "trials": study.records()}, indent=1),
                         encoding="utf-8")
    os.replace(temporary, study.path)
