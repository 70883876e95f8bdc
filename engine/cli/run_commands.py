"""`engine plan`, `engine run` and `engine show`."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from engine.cli import spec_args, store_arg
from engine.errors import EngineError, UsageError


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
    from engine import api

    return api.plan(args.spec, args.overrides, store=args.store, force=tuple(args.force), until=args.until,
                    rehash=args.rehash)


def print_plan(steps, stream=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.core.reasons import render_all

    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("stage", no_wrap=True)  # a sweep's node names are long; the reasons wrap instead
    table.add_column("action", no_wrap=True)
    table.add_column("key", no_wrap=True)
    table.add_column("why", overflow="fold")
    for s in steps:
        style = "green" if s.action == "cached" else "cyan"
        table.add_row(escape(s.node.name), f"[{style}]{s.action}[/]", (s.key or "pending")[:12], escape(render_all(s.reasons)))
    Console(file=stream or sys.stdout, highlight=False).print(table)


def plan(args) -> int:
    p = _plan(args)
    if args.json:
        print(json.dumps(p.as_json(), indent=2))
    else:
        print_plan(p.steps)
        drift = {r["name"]: (r["old"], r["new"]) for step in p.steps for r in step.reasons if r["kind"] == "library"}
        if drift:
            print(library_advice(drift, args.spec))
        if p.graph.variants:
            print(sweep_summary(p.graph, p.steps))
        from engine.core.remote_store import display
        from engine.core.remote_run import remote_url

        url = remote_url(p.spec.get("runtime.remote"), p.spec.root)
        if url and any(s.action == "run" for s in p.steps):  # plan reads no remote: it only says one is there
            print(f"remote {display(url)}: `engine run` pulls each stage it has instead of building it "
                  f"(`engine cache pull {display(url)} --spec {args.spec}` fetches them without running)")
    return 0


def library_advice(drift: dict[str, tuple], spec: str) -> str:
    """What to do when the record was made under other library versions than those installed."""
    made = ", ".join(f"{name} {old}" for name, (old, _) in sorted(drift.items()))
    here = ", ".join(f"{name} {new}" for name, (_, new) in sorted(drift.items()))
    return (f"the record was made with {made}; this environment has {here}. Install the locked environment "
            f"(`make install`, from requirements.lock) to use the recorded results, or `engine run {spec}` to "
            f"rebuild under these versions")


def sweep_summary(graph, steps) -> str:
    """`6 variants; shared by all: model, data; cached: 4 of 17 stages`."""
    variants = graph.variants
    shared = [n for n in graph.order if all(n in v.nodes.values() for v in variants)]
    cached = sum(1 for s in steps if s.action == "cached")
    return (f"{len(variants)} variants; shared by all: {', '.join(shared) or 'nothing'}; "
            f"{cached} of {len(steps)} stages cached")


def run(args) -> int:
    from engine import api
    from engine.cli import terminate_gracefully
    from engine.core.record import record_path
    from engine.core.remote_run import RunLink, remote_settings
    from engine.core.reporter import ConsoleReporter

    p = _plan(args)
    if args.address and args.executor != "ray":
        raise UsageError("--address is the Ray cluster of --executor ray; add --executor ray")
    settings = remote_settings(p.spec.get("runtime.remote"), p.spec.root, args.push)
    builds = any(step.action != "cached" for step in p.steps)  # a fully cached run needs no remote and no Ray
    link = RunLink.open(settings) if builds else None
    executor = None
    if args.executor == "ray" and builds:
        from engine.executors.ray import RayExecutor
        from engine.pipeline import resolve_spec

        executor = RayExecutor(resolve_spec, p.spec.path, p.overrides, p.store.root,
                               {"trust_remote_code": args.trust_remote_code, "allow_pickle": args.allow_pickle},
                               args.address, settings, (p.spec.get("runtime") or {}).get("device", "auto"))
    terminate_gracefully()
    reporter = ConsoleReporter(quiet=False)
    try:
        outcome = api.run(p, reporter, trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle,
                          link=link, executor=executor)
    finally:
        reporter.close()  # Ctrl-C, SIGTERM or a crash never leave a live bar or a hidden cursor behind
    result = outcome.result
    if link is not None and link.summary():
        reporter.say(link.summary(), "note")
    if outcome.ok:
        if not result.ran:
            reporter.say(f"nothing to do: every stage is cached (record {_rel(outcome.record_path)})", "note")
        else:
            for line in run_summary(p, result.entries):
                reporter.say(line)
            reporter.say(f"ok: ran {', '.join(result.ran)}; record written to {_rel(outcome.record_path)}", "ok")
        if p.overrides:
            reporter.say(f"the spec's record {_rel(record_path(p.spec.path))} was left alone: it describes the spec as "
                         f"written, not with --set. See this run with `engine show {args.spec} "
                         + " ".join(f"--set {shlex.quote(o)}" for o in args.overrides) + "`", "note")
    else:
        skipped = f"; skipped {', '.join(result.skipped)}" if result.skipped else ""
        failed = " and ".join(result.failed)
        reporter.say(f"failed: {failed}{skipped}. Nothing of {failed} was cached; the record was not written; "
                     f"fix the problem and run again; finished stages stay cached.", "error")
        if getattr(args, "verbose", False):
            import traceback

            for error in result.errors.values():
                traceback.print_exception(error)
    if args.json:
        print(json.dumps({"ok": result.ok, "ran": result.ran, "failed": result.failed, "skipped": list(result.skipped),
                          "pulled": link.pulled if link else [], "pushed": link.pushed if link else [],
                          "stages": {n: {"key": e.key, "path": str(e.out), "metrics": e.manifest.get("result", {}).get("metrics", {})}
                                     for n, e in result.entries.items()}}, indent=2))
    return 0 if result.ok else 1


def loadable_output(entry_path: Path, produces: tuple[str, ...]) -> Path | None:
    """What a person opens of an entry: the first of the stage's PRODUCES that exists (a train
    output's `model/` or `adapter/` loads with `AutoModelFor...from_pretrained`), else `out/`."""
    for part in tuple(produces) + ("",):
        candidate = entry_path / "out" / part if part else entry_path / "out"
        if candidate.exists():
            return candidate
    return None


def show(args) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.core.digests import DigestCache
    from engine.api import spec_label
    from engine.core.record import override_record_path, read_record, record_path
    from engine.core.reasons import render_all
    from engine.core.status import CURRENT, library_drift, record_status, summary
    from engine.core.store import Store, default_root
    from engine.pipeline import resolve_spec as resolve
    from engine.review.metrics import stage_headlines
    from engine.spec import load_spec

    spec = load_spec(Path(args.spec), args.overrides)
    store = Store(Path(args.store).resolve() if args.store else default_root(spec.root))
    record_file = (override_record_path(store.root, spec_label(spec), spec.name, args.overrides) if args.overrides
                   else record_path(spec.path))
    record = read_record(spec.path, record_file)
    if record is None:
        how = f"engine run {args.spec}" + "".join(f" --set {shlex.quote(o)}" for o in args.overrides)
        raise EngineError(f"no record for {args.spec}{' with these --set values' if args.overrides else ''} "
                          f"(looked for {_rel(record_file)}); run `{how}` first")
    graph = resolve(spec)
    statuses = record_status(graph, store, DigestCache(store.state_db), record)
    for name, node in record["nodes"].items():
        kind = graph.registry.get(node.get("kind", ""))
        path = loadable_output(store.entry_path(node["key"]), getattr(kind, "PRODUCES", ()))
        node["output"] = str(path) if path else None
        node["status"] = statuses[name].state if name in statuses else "not in spec"
        if name in statuses and statuses[name].reasons:
            node["reasons"] = list(statuses[name].reasons)
    state = summary(statuses)
    if args.json:
        print(json.dumps({**record, "status": state, "record_file": str(record_file)}, indent=2, sort_keys=True))
        return 0
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]{escape(record['spec'])}[/]  seed {record['seed']}  engine {record['engine']}"
                  + (f"  --set {' '.join(record.get('overrides', []))}" if record.get("overrides") else ""))
    if state != CURRENT:
        console.print(f"[yellow]this record is not the result of the spec as it is now ({escape(state)}):[/]")
        for name, status in statuses.items():
            if status.reasons:
                console.print(f"[yellow]  {escape(name)}: {escape(render_all(list(status.reasons)))}[/]")
        drift = library_drift(statuses)
        if drift:
            console.print(f"[yellow]{escape(library_advice(drift, args.spec))}[/]")
        else:
            console.print(f"[yellow]`engine run {escape(args.spec)}` brings it up to date[/]")
    table = Table(box=None, header_style="bold")
    for column in ("stage", "status", "key", "wall", "metrics"):
        table.add_column(column, overflow="fold")
    order = {name: i for i, name in enumerate(graph.order)}  # pipeline order, not alphabetical
    nodes = sorted(record["nodes"].items(), key=lambda item: order.get(item[0], len(order)))
    for name, node in nodes:
        wanted = None if args.all else stage_headlines(spec, node.get("kind", ""))
        metrics = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in node["metrics"].items()
                            if not isinstance(v, (dict, list)) and (wanted is None or k in wanted))
        colour = "green" if node["status"] == CURRENT else "yellow"
        table.add_row(escape(name), f"[{colour}]{node['status']}[/]", node["key"][:12], f"{node['wall_s']:.1f}s", escape(metrics))
    for name in graph.order:
        if name not in record["nodes"]:
            table.add_row(escape(name), "[yellow]not run[/]", "", "", "")
    console.print(table)
    console.print("[bold]outputs[/]")
    for name, node in nodes:  # whole paths on their own lines: never cut by the terminal's width
        console.print(f"  {escape(name)}: " + (escape(node["output"]) if node["output"] else "[red]not in store[/]"),
                      soft_wrap=True)
    for name, node in nodes:
        if "per_class" in node["metrics"]:
            console.print(_class_table(name, node["metrics"]))
    if graph.variants or record.get("sweep"):
        from engine.review.ranking import rank, table, verdict

        metric, mode, rows = rank(record, statuses, graph)
        table(metric, mode, rows, console)
        console.print(escape(verdict(metric, rows)))
    return 0


def run_summary(p, entries: dict) -> list[str]:
    """The end of a run: headline numbers before -> after fine-tuning, and the first sample as text."""
    from engine.review.metrics import stage_headlines

    lines = []
    for kind in ("evaluate", "generate"):
        after, before = entries.get(kind), entries.get(f"{kind}[baseline]")
        if after is None:
            continue
        shown = []
        for name in stage_headlines(p.spec, kind):
            if name == "samples":
                continue
            new = after.manifest.get("result", {}).get("metrics", {}).get(name)
            old = before.manifest.get("result", {}).get("metrics", {}).get(name) if before else None
            if isinstance(new, (int, float)):
                shown.append(f"{name} {old:.4g} -> {new:.4g}" if isinstance(old, (int, float)) else f"{name} {new:.4g}")
        if shown:
            lines.append(f"{kind}: " + "  ".join(shown) + ("  (before -> after fine-tuning)" if before else ""))
    samples = entries.get("generate")
    if samples is not None and (samples.out / "samples.jsonl").is_file():
        with open(samples.out / "samples.jsonl", encoding="utf-8") as handle:
            first = json.loads(handle.readline() or "{}")
        text = (first.get("completion") or "").strip("\n").splitlines()
        if text:
            lines.append("first sample:")
            lines += [f"  {line}" for line in text[:12]] + (["  ..."] if len(text) > 12 else [])
    return lines


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
