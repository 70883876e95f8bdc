"""`engine plan`, `engine run` and `engine show`."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from engine.cli import spec_args, store_arg


def register(sub) -> None:
    for name, handler, text in (("plan", plan, "show which stages would run and why, without running them"),
                                ("run", run, "run the stages whose outputs are not in the store")):
        p = sub.add_parser(name, help=text)
        spec_args(p)
        store_arg(p)
        p.add_argument("--force", action="append", default=[], metavar="STAGE",
                       help=f"{name} STAGE (and what depends on it) even if cached (repeatable)")
        p.add_argument("--until", metavar="STAGE", help="stop after STAGE")
        p.add_argument("--rehash", action="store_true", help="rehash input files instead of trusting unchanged size and mtime")
        p.add_argument("--json", action="store_true", help="print the plan (or the run summary) as JSON")
        p.add_argument("--allow-pickle", action="store_true",
                       help="allow model weights stored as pickle (pytorch_model.bin, .pt): loading a pickle can run "
                            "code. Never settable from a spec; prefer converting to safetensors")
        if name == "run":
            p.add_argument("--trust-remote-code", action="store_true",
                           help="allow model code from the hub to run; never settable from a spec")
            p.add_argument("--executor", choices=("local", "ray"), default="local",
                           help="local: stages one at a time in this process (default); ray: every stage whose upstream "
                                "is ready at once, as Ray tasks (pip install ray)")
            p.add_argument("--address", metavar="ADDR",
                           help="with --executor ray: the Ray cluster to join (e.g. ray://head:10001, or auto); "
                                "default a local Ray instance started for this run")
            p.add_argument("--push", action="store_true",
                           help="push the entries this run builds to the remote (runtime.remote or ENGINE_REMOTE); also "
                                "ENGINE_REMOTE_PUSH=1. Never settable from a spec: by default a run only reads the remote")
        p.set_defaults(handler=handler)

    p = sub.add_parser("show", help="print the record of a spec's last run: keys, metrics, output paths")
    spec_args(p)
    store_arg(p)
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--all", action="store_true", help="every metric of every stage (default: the headline ones)")
    p.set_defaults(handler=show)


def _plan(args):
    from engine.app.running import plan

    return plan(args.spec, args.overrides, store=args.store, force=tuple(args.force), until=args.until,
                rehash=args.rehash)


def print_plan(p, stream=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("stage", no_wrap=True)  # a sweep's node names are long; the reasons wrap instead
    table.add_column("action", no_wrap=True)
    table.add_column("key", no_wrap=True)
    table.add_column("why", overflow="fold")
    for s in p.steps:
        style = "green" if s.action == "cached" else "cyan"
        table.add_row(escape(s.node.name), f"[{style}]{s.action}[/]", (s.key or "pending")[:12], escape(p.why(s)))
    Console(file=stream or sys.stdout, highlight=False).print(table)


def plan(args) -> int:
    p = _plan(args)
    if args.json:
        print(json.dumps(p.as_json(), indent=2))
    else:
        print_plan(p)
        drift = p.library_drift()
        if drift:
            print(library_advice(drift, args.spec))
        if p.graph.variants:
            print(sweep_summary(p))
        if p.search_summary():
            print(p.search_summary())
        url = p.remote_shown()
        if url and any(s.action == "run" for s in p.steps):  # plan reads no remote: it only says one is there
            print(f"remote {url}: `engine run` pulls each stage it has instead of building it "
                  f"(`engine cache pull {url} --spec {args.spec}` fetches them without running)")
    return 0


def library_advice(drift: dict[str, tuple], spec: str) -> str:
    """What to do when the record was made under other library versions than those installed."""
    made = ", ".join(f"{name} {old}" for name, (old, _) in sorted(drift.items()))
    here = ", ".join(f"{name} {new}" for name, (_, new) in sorted(drift.items()))
    return (f"the record was made with {made}; this environment has {here}. Install the locked environment "
            f"(`make install`, from requirements.lock) to use the recorded results, or `engine run {spec}` to "
            f"rebuild under these versions")


def sweep_summary(p) -> str:
    """`6 variants; shared by all: model, data; cached: 4 of 17 stages`."""
    cached = sum(1 for s in p.steps if s.action == "cached")
    return (f"{len(p.graph.variants)} variants; shared by all: {', '.join(p.shared_nodes()) or 'nothing'}; "
            f"{cached} of {len(p.steps)} stages cached")


def run(args) -> int:
    """Run the spec; a sweep.search runs round by round, planning again after each, until every
    trial is done (engine/app/searching.py)."""
    from engine.app.running import run_json

    p, first = _plan(args), True
    while True:
        outcome, code, launch = _run_round(args, p, hide_cached=not first)
        first = False
        search = outcome.search
        if search is not None and (search.told or search.stopped):
            print(search.line() + (f"; stopped: {search.stopped}" if search.stopped else ""), file=sys.stderr)
        if search is None or not search.more:
            break
        p = _plan(args)  # the study chooses the next trials from the results so far
    if args.json:  # of the last round: a search's record then holds every trial
        print(json.dumps(run_json(outcome, launch), indent=2))
    return 1 if search is not None and search.stopped else code


def _run_round(args, p, hide_cached: bool = False):
    from engine.app.running import prepare_run, run as run_plan, run_lines
    from engine.cli import terminate_gracefully
    from engine.cli.reporter import ConsoleReporter

    launch = prepare_run(p, executor=args.executor, address=args.address, push=args.push,
                         trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle)
    terminate_gracefully()
    reporter = ConsoleReporter(quiet=False, hide_cached=hide_cached)
    try:
        outcome = run_plan(p, reporter, trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle,
                           launch=launch)
    finally:
        reporter.close()  # Ctrl-C, SIGTERM or a crash never leave a live bar or a hidden cursor behind
    result = outcome.result
    if launch.summary():
        reporter.say(launch.summary(), "note")
    if outcome.ok:
        if not result.ran:
            reporter.say(f"nothing to do: every stage is cached (record {_rel(outcome.record_path)})", "note")
        else:
            for line in run_lines(p, result.entries):
                reporter.say(line)
            reporter.say(f"ok: ran {', '.join(result.ran)}; record written to {_rel(outcome.record_path)}", "ok")
        if p.overrides:
            reporter.say(f"the spec's record {_rel(p.spec_record_file())} was left alone: it describes the spec as "
                         f"written, not with --set. See this run with `engine show {args.spec} "
                         + " ".join(f"--set {shlex.quote(o)}" for o in args.overrides) + "`", "note")
    elif outcome.search is not None and outcome.search.more:
        reporter.say(f"failed: {' and '.join(result.failed)}; the search goes on with the other trials", "error")
    else:
        skipped = f"; skipped {', '.join(result.skipped)}" if result.skipped else ""
        failed = " and ".join(result.failed)
        reporter.say(f"failed: {failed}{skipped}. Nothing of {failed} was cached; the record was not written; "
                     f"fix the problem and run again; finished stages stay cached.", "error")
        if getattr(args, "verbose", False):
            import traceback

            for error in result.errors.values():
                traceback.print_exception(error)
    return outcome, 0 if result.ok else 1, launch


def show(args) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.app.show import show as show_record

    shown = show_record(args.spec, args.overrides, args.store)
    record = shown.record
    if args.json:
        print(json.dumps(shown.as_json(), indent=2, sort_keys=True))
        return 0
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]{escape(record['spec'])}[/]  seed {record['seed']}  engine {record['engine']}"
                  + (f"  --set {' '.join(record.get('overrides', []))}" if record.get("overrides") else ""))
    if not shown.current:
        console.print(f"[yellow]this record is not the result of the spec as it is now ({escape(shown.state)}):[/]")
        for name, status in shown.statuses.items():
            if status.reasons:
                console.print(f"[yellow]  {escape(name)}: {escape(shown.why(name))}[/]")
        drift = shown.library_drift()
        if drift:
            console.print(f"[yellow]{escape(library_advice(drift, args.spec))}[/]")
        else:
            console.print(f"[yellow]`engine run {escape(args.spec)}` brings it up to date[/]")
    table = Table(box=None, header_style="bold")
    for column in ("stage", "status", "key", "wall", "metrics"):
        table.add_column(column, overflow="fold")
    for name, node in shown.nodes:
        wanted = None if args.all else shown.headlines[name]
        metrics = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in node["metrics"].items()
                            if not isinstance(v, (dict, list)) and (wanted is None or k in wanted))
        colour = "green" if node["status"] == "current" else "yellow"
        table.add_row(escape(name), f"[{colour}]{node['status']}[/]", node["key"][:12], f"{node['wall_s']:.1f}s", escape(metrics))
    for name in shown.not_run:
        table.add_row(escape(name), "[yellow]not run[/]", "", "", "")
    console.print(table)
    console.print("[bold]outputs[/]")
    for name, node in shown.nodes:  # whole paths on their own lines: never cut by the terminal's width
        console.print(f"  {escape(name)}: " + (escape(node["output"]) if node["output"] else "[red]not in store[/]"),
                      soft_wrap=True)
    for name, node in shown.nodes:
        if "per_class" in node["metrics"]:
            console.print(_class_table(name, node["metrics"]))
    checks = [row for row in shown.checks if args.all or row.metric in (shown.headlines.get(row.node) or ())]
    if checks:
        console.print(_checks_table(checks))
    if shown.ranking is not None:
        shown.ranking.print(console)
    return 0


def _checks_table(rows):
    """Each check's metric before fine-tuning, after, and on held-out real items (its reference)."""
    from rich.markup import escape
    from rich.table import Table

    several = len({row.node for row in rows}) > 1
    table = Table(title="checks: base -> fine-tuned -> real (held-out items of the data)", title_justify="left",
                  header_style="bold", box=None)
    for column in (["node"] if several else []) + ["metric", "base", "fine-tuned", "real"]:
        table.add_column(column, justify="left" if column in ("node", "metric") else "right")
    shown = lambda value: "-" if value is None else f"{value:.4g}"  # noqa: E731
    for row in rows:
        table.add_row(*([escape(row.node)] if several else []), escape(row.metric), shown(row.base), shown(row.tuned),
                      shown(row.real))
    return table


def _class_table(name: str, metrics: dict):
    """Per-class precision/recall/F1 and the confusion matrix of a classification evaluation."""
    from rich.markup import escape
    from rich.table import Table

    matrix = metrics.get("confusion_matrix", {})
    labels = matrix.get("labels", list(metrics["per_class"]))
    rows = matrix.get("rows_true_columns_predicted")
    table = Table(title=f"{escape(name)}: per class (rows: true class; columns: predicted)", title_justify="left", header_style="bold")
    for column in ["class", "precision", "recall", "f1", "support"] + (labels if rows else []):
        table.add_column(column, justify="left" if column == "class" else "right")
    for i, label in enumerate(labels):
        row = metrics["per_class"][label]
        cells = [escape(label), f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])]
        table.add_row(*cells, *([str(v) for v in rows[i]] if rows else []))
    if "majority_accuracy" in metrics:
        table.caption = (f"accuracy {metrics.get('accuracy', float('nan')):.3f}, macro-F1 {metrics.get('macro_f1', float('nan')):.3f}; "
                         f"majority class {metrics['majority_class']!r}: accuracy {metrics['majority_accuracy']:.3f}, "
                         f"macro-F1 {metrics['majority_macro_f1']:.3f}")
    return table


def _rel(path: Path) -> str:
    from engine.app import display_name

    return display_name(path)
