"""Training charts as inline SVG: loss and validation loss per step, learning rate per step, and
for a grpo run (train.rewards) the mean reward per step with each of its parts.

matplotlib is imported here, inside the functions, and only by `engine report`. Figures are made
with `matplotlib.figure.Figure` (no pyplot, so no global backend and no GUI) and saved as SVG with
text kept as text (small, searchable). What makes a standalone SVG file is cut away (the XML
prolog, namespace URLs) and ids are salted per chart, so several charts live in one page.
"""
from __future__ import annotations

import io
import re

from engine.report.data import SpecData, Variant, log_history
from engine.report.markup import Html, esc, join, tag

SIZE = (5.6, 3.0)  # inches; the page scales the SVG to its column


def training_charts(data: SpecData) -> Html:
    """Loss and learning-rate charts of the spec's train node(s); one line per train node of a sweep."""
    series, missing = [], []
    for label, node in train_nodes(data.variants()):
        history = log_history(data.out(node))
        if history is None:
            missing.append(f"{node}: " + ("training log not in store" if node in data.nodes else "not run"))
        else:
            series.append((label, history))
    notes = join(tag("p", note, class_="missing") for note in missing)
    if not series:
        return notes
    salt = f"{data.label}-"  # unique per spec file: two charts never share an id
    charts = [loss_chart(series, salt + "loss")]
    if any("learning_rate" in e for _, h in series for e in h):
        charts.append(lr_chart(series, salt + "lr"))
    if any("reward" in e for _, h in series for e in h):
        charts.append(reward_chart(series, salt + "reward"))
    return join([tag("div", join(charts), class_="charts"), notes])


def train_nodes(variants: list[Variant]) -> list[tuple[str, str]]:
    """[(legend label, train node)], each train node once: variants that share a training share a line."""
    seen: dict[str, str] = {}
    for variant in variants:
        node = variant.nodes.get("train")
        if node and node not in seen:
            seen[node] = _bracket(node) or "train"
    return [(label, node) for node, label in seen.items()]


def _bracket(node: str) -> str:
    return node[node.index("[") + 1:-1] if node.endswith("]") and "[" in node else ""


def _points(history: list[dict], field: str) -> tuple[list, list]:
    pairs = [(e["step"], e[field]) for e in history if _number(e.get("step")) and _number(e.get(field))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def loss_chart(series: list[tuple[str, list[dict]]], salt: str) -> Html:
    fig, ax = _figure()
    single = len(series) == 1
    for i, (label, history) in enumerate(series):
        colour = f"C{i}"
        _line(ax, *_points(history, "loss"), color=colour, linewidth=1.4, label="training loss" if single else label)
        steps, values = _points(history, "eval_loss")
        if steps:
            ax.plot(steps, values, color=colour, linestyle="--", marker="o", markersize=4, linewidth=1,
                    label="validation loss" if single else None)
    _around_one_value(ax)
    ax.set_title("loss per step" if single else "training loss (lines), validation loss (dashed, dots)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    return svg(fig, salt, "loss per step")


def lr_chart(series: list[tuple[str, list[dict]]], salt: str) -> Html:
    fig, ax = _figure()
    for i, (label, history) in enumerate(series):
        _line(ax, *_points(history, "learning_rate"), color=f"C{i}", linewidth=1.4, label=label)
    _around_one_value(ax)
    ax.set_title("learning rate per step")
    ax.set_xlabel("step")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    if len(series) > 1:
        ax.legend(fontsize=8)
    return svg(fig, salt, "learning rate per step")


def reward_chart(series: list[tuple[str, list[dict]]], salt: str) -> Html:
    """The mean reward per step (TRL's `reward`), and of one run each part (`rewards/<part>/mean`) dashed."""
    fig, ax = _figure()
    single = len(series) == 1
    for i, (label, history) in enumerate(series):
        _line(ax, *_points(history, "reward"), color=f"C{i}", linewidth=1.4, label="reward" if single else label)
        parts = sorted({k for e in history for k in e if k.startswith("rewards/") and k.endswith("/mean")})
        for j, part in enumerate(parts if single and len(parts) > 1 else []):
            _line(ax, *_points(history, part), color=f"C{j + 1}", linestyle="--", linewidth=1, label=part.split("/")[1])
    _around_one_value(ax)
    ax.set_title("mean reward per step")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    return svg(fig, salt, "mean reward per step")


def _line(ax, steps: list, values: list, **style) -> None:
    """A line, with a dot where it has one point (a line through one point draws nothing)."""
    ax.plot(steps, values, marker="o" if len(steps) == 1 else None, markersize=4, **style)


def _around_one_value(ax) -> None:
    """An axis whose data has one value (one logged step, a constant rate) gets a range around it:
    from 0 to twice the step, and half the value either side; matplotlib's own is a sliver (steps 9.6 to 10.4)."""
    (x0, y0), (x1, y1) = ax.dataLim.get_points()
    if x0 == x1:
        ax.set_xlim(*((0, 2 * x0) if x0 > 0 else (x0 - 1, x0 + 1)))
    if y0 == y1:
        pad = abs(y0) / 2 or 1
        ax.set_ylim(y0 - pad, y0 + pad)


def _figure():
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole
    ax.grid(True, linewidth=0.4, alpha=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def svg(fig, salt: str, title: str) -> Html:
    """The figure as an `<svg>` element to put inside HTML (see module docstring)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)  # inside HTML the parser knows SVG's namespaces
    text = text.replace("xlink:href=", "href=")
    text = re.sub(r'\s+id="[A-Za-z.]+_\d+"', "", text)  # figure_1, axes_1...: would repeat across charts
    text = re.sub(r'<svg width="[^"]*" height="[^"]*"', f'<svg class="chart" role="img" aria-label="{esc(title)}"', text, 1)
    return Html(text.strip())


def search_chart(data: SpecData) -> Html:
    """A sweep.search's metric per trial (dots; a failed trial a cross on the axis) and the best so far
    (a step line), from the record's trials; nothing for other specs."""
    search = ((data.record or {}).get("sweep") or {}).get("search")
    if not search or not search.get("done"):
        return Html("")
    trials = search["done"]
    fig, ax = _figure()
    better = min if search["mode"] == "min" else max
    steps, values, best, so_far = [], [], [], None
    for number, trial in enumerate(trials, 1):
        if trial["state"] == "complete" and _number(trial["value"]):
            steps.append(number)
            values.append(trial["value"])
            so_far = trial["value"] if so_far is None else better(so_far, trial["value"])
        best.append(so_far)
    ax.plot(steps, values, linestyle="none", marker="o", markersize=5, color="C0", label="trial")
    shown = [(n, b) for n, b in enumerate(best, 1) if b is not None]
    if shown:
        ax.step([n for n, _ in shown], [b for _, b in shown], where="post", color="C1", linewidth=1.4, label="best so far")
    failed = [n for n, t in enumerate(trials, 1) if t["state"] != "complete"]
    if failed:
        ax.plot(failed, [min(values) if values else 0] * len(failed), linestyle="none", marker="x", color="C3",
                label="failed")
    _around_one_value(ax)
    ax.set_title(f"{search['metric']} per trial ({search['method']}; {'lower' if search['mode'] == 'min' else 'higher'} is better)")
    ax.set_xlabel("trial")
    ax.set_ylabel(search["metric"])
    ax.legend(fontsize=8)
    return svg(fig, f"{data.label}-search", f"{search['metric']} per trial")
