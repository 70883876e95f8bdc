"""`engine plan`, `engine run` and `engine show`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.cli import spec_args, store_arg
from engine.errors import EngineError


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
        if name == "run":
            p.add_argument("--trust-remote-code", action="store_true",
                           help="allow model code from the hub to run; never settable from a spec")
        p.set_defaults(handler=handler)

    p = sub.add_parser("show", help="print the record of a spec's last run: keys, metrics, output paths")
    spec_args(p)
    store_arg(p)
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(handler=show)


def _prepare(args):
    from engine.core.digests import DigestCache
    from engine.core.graph import resolve
    from engine.core.plan import make_plan
    from engine.core.record import read_record
    from engine.core.store import Store, default_root
    from engine.spec import load_spec

    spec = load_spec(Path(args.spec), args.overrides)
    store = Store(Path(args.store).resolve() if args.store else default_root(spec.root))
    graph = resolve(spec)
    digests = DigestCache(store.state_db, rehash=args.rehash)
    record = read_record(spec.path)
    steps = make_plan(graph, store, digests, record, tuple(args.force), args.until)
    return spec, store, graph, digests, steps, record


def plan_as_json(steps) -> list[dict]:
    return [{"stage": s.node.name, "kind": s.node.kind, "action": s.action, "key": s.key, "reasons": s.reasons}
            for s in steps]


def print_plan(steps, stream=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("stage")
    table.add_column("action")
    table.add_column("key")
    table.add_column("why")
    for s in steps:
        style = "green" if s.action == "cached" else "cyan"
        table.add_row(escape(s.node.name), f"[{style}]{s.action}[/]", (s.key or "pending")[:12], escape("; ".join(s.reasons)))
    Console(file=stream or sys.stdout, highlight=False).print(table)


def plan(args) -> int:
    _, _, _, digests, steps, _ = _prepare(args)
    digests.save()
    if args.json:
        print(json.dumps(plan_as_json(steps), indent=2))
    else:
        print_plan(steps)
    return 0


def run(args) -> int:
    from engine.core.record import record_nodes, write_record
    from engine.core.reporter import ConsoleReporter
    from engine.core.runner import run_plan

    spec, store, graph, digests, steps, record = _prepare(args)
    reporter = ConsoleReporter(quiet=False)
    result = run_plan(graph, steps, store, digests, reporter, {"trust_remote_code": args.trust_remote_code})
    if result.ok:
        path = write_record(spec.path, spec.name, spec.get("seed"), record_nodes(graph, result.entries, record), record)
        if not result.ran:
            reporter.say(f"nothing to do: every stage is cached (record {_rel(path)})", "note")
        else:
            reporter.say(f"ok: ran {', '.join(result.ran)}; record written to {_rel(path)}", "ok")
    else:
        skipped = f"; skipped {', '.join(result.skipped)}" if result.skipped else ""
        reporter.say(f"failed: {result.failed}{skipped}. Nothing of {result.failed} was cached; "
                     f"fix the problem and run again; finished stages stay cached.", "error")
        if getattr(args, "verbose", False) and result.error is not None:
            import traceback

            traceback.print_exception(result.error)
    if args.json:
        print(json.dumps({"ok": result.ok, "ran": result.ran, "failed": result.failed, "skipped": result.skipped,
                          "stages": {n: {"key": e.key, "path": str(e.out), "metrics": e.manifest.get("result", {}).get("metrics", {})}
                                     for n, e in result.entries.items()}}, indent=2))
    return 0 if result.ok else 1


def show(args) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.core.graph import resolve
    from engine.core.record import read_record, record_path
    from engine.core.store import Store, default_root
    from engine.spec import load_spec

    spec = load_spec(Path(args.spec), args.overrides)
    record = read_record(spec.path)
    if record is None:
        raise EngineError(f"no record for {args.spec} (looked for {_rel(record_path(spec.path))}); run `engine run {args.spec}` first")
    store = Store(Path(args.store).resolve() if args.store else default_root(spec.root))
    for node in record["nodes"].values():
        path = store.entry_path(node["key"]) / "out"
        node["output"] = str(path) if path.exists() else None
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
        return 0
    console = Console(highlight=False)
    console.print(f"[bold]{record['spec']}[/]  seed {record['seed']}  engine {record['engine']}")
    table = Table(box=None, header_style="bold")
    for column in ("stage", "key", "wall", "metrics", "output"):
        table.add_column(column)
    order = {name: i for i, name in enumerate(resolve(spec).order)}  # pipeline order, not alphabetical
    nodes = sorted(record["nodes"].items(), key=lambda item: order.get(item[0], len(order)))
    for name, node in nodes:
        metrics = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in node["metrics"].items()
                            if not isinstance(v, (dict, list)))
        output = escape(_rel(Path(node["output"]))) if node["output"] else "[red]not in store[/]"
        table.add_row(escape(name), node["key"][:12], f"{node['wall_s']:.1f}s", escape(metrics), output)
    console.print(table)
    for name, node in nodes:
        if "per_class" in node["metrics"]:
            console.print(_class_table(name, node["metrics"]))
    return 0


def _class_table(name: str, metrics: dict):
    """Per-class precision/recall/F1 and the confusion matrix of a classification evaluation."""
    from rich.table import Table

    matrix = metrics.get("confusion_matrix", {})
    labels = matrix.get("labels", list(metrics["per_class"]))
    rows = matrix.get("rows_true_columns_predicted")
    from rich.markup import escape

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
    from engine.spec.compose import display_name

    return display_name(path)
