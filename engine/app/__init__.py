"""The application layer: one function per command, between the CLI and everything else.

    engine/cli/ ── parses arguments, renders results, turns errors into exit codes
        │  imports only engine.app, engine.errors and engine.cli.*
        ▼
    engine/app/ ── opens an experiment and does one command with it, returning data
        │
        ▼
    engine.spec, engine.core, engine.pipeline, engine.review, engine.report, engine.export, ...

    experiment.py  open_experiment (spec + overrides -> store, graph, record file, record,
                   statuses) and open_store: the one rule for which store and which record file
    running.py     plan, prepare_run, run                        `engine plan`, `engine run`
    study.py       a sweep.search's study in the store; searching.py: what a run's round tells it
    show.py        show                                          `engine show`
    review.py      diff, compare                                 `engine diff`, `engine compare`
    pull_request.py review                                       `engine review` (the pull-request check)
    reproducing.py reproduce                                     `engine reproduce`
    bisecting.py   bisect                                        `engine bisect`
    outputs.py     report, export                                `engine report`, `engine export`
    cache.py       ls, gc, verify                                `engine cache ls|gc|verify`
    transfer.py    push, pull                                    `engine cache push|pull`
    specs.py       validate, schema                              `engine validate`, `engine schema`

Each function takes plain values (paths, overrides, a store folder) and returns a result object;
none prints (a run reports through the reporter it is given, a transfer through its Progress).
Nothing here imports torch, transformers or datasets at module level: `validate`, `plan`, `diff`
and a fully cached `run` never load them. This package imports its modules lazily; the helpers
below are the few things the CLI shows that come from further down.
"""
from __future__ import annotations

from pathlib import Path

from engine import __version__
from engine.units import size_text

__all__ = ["__version__", "size_text", "display_name", "allow_outside_project"]


def allow_outside_project(allowed: bool) -> None:
    """The operator's opt-in to inputs outside the project (--allow-outside-project), process-wide
    until set again (the CLI sets it for each command)."""
    from engine.core.project import allow_outside

    allow_outside(allowed)


def display_name(path: str | Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    from engine.spec.compose import display_name as shown

    return shown(Path(path))
