"""The report page: one self-contained HTML file, a section per spec.

Styles are inline and images are inline SVG, so the file opens anywhere without a network and
can be mailed or attached to a pull request. A page with ABC tunes also carries, inline, the
script that draws them (sheet.py); any other page has no script. Nothing from the clock goes in:
the same records and store give the same bytes.
"""
from __future__ import annotations

import re

from engine import __version__
from engine.core.status import CURRENT, summary
from engine.report.charts import search_chart, training_charts
from engine.report.data import SpecData
from engine.report.fields import changed_fields, field_text
from engine.report.markup import Html, join, tag
from engine.report.samples import samples_section
from engine.report.sheet import scripts
from engine.report.tables import comparison_table, metrics_tables, stage_table, sweep_table

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:19px;margin:0 0 4px;padding-top:8px}
h3{font-size:15px;margin:22px 0 6px;color:#2d3a55}
section.spec{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:12px 20px 20px;margin:18px 0}
ul.fields{columns:2 380px;column-gap:28px;list-style:none;padding:0;margin:4px 0;font-size:13px}
ul.fields li{break-inside:avoid;padding:1px 0;border-bottom:1px solid #eef0f3}ul.fields code{color:#2d3a55;margin-right:6px}
code,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:12.5px}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f7;border-radius:4px;padding:6px 8px;margin:4px 0}
pre.prompt{background:#eef3fb;border-left:3px solid #7a9cd6}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border-bottom:1px solid #e4e7ec;padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#44506a}
table.metrics td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;color:#55607a;font-size:12.5px;padding-bottom:4px}
tr.stale td{color:#8a93a6;font-style:italic}tr.change td{font-weight:600}
.state{border-radius:3px;padding:0 5px;font-size:12px;white-space:nowrap}
.state.ok{background:#e3f5e6;color:#1b6b2c}.state.stale{background:#fff3d6;color:#8a5a00}
.bad{color:#b3261e}.ok{color:#1b6b2c}.missing{color:#b3261e}.note{color:#55607a}
.meta{color:#55607a;margin:2px 0}.meta b{color:#1d2330;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{width:100%;max-width:540px;height:auto}
.grid{display:grid;gap:10px;margin:4px 0}.grid.cols2{grid-template-columns:1fr 1fr}.grid.cols1{grid-template-columns:1fr}
.cell{border:1px solid #e4e7ec;border-radius:6px;padding:4px 8px;min-width:0}
.side-head{font-size:13px}.sample-head,.prompt-head{margin:6px 0 0;color:#55607a;font-size:12px}
mark{background:#ffd7a8;border-radius:2px}
ul.checks{list-style:none;padding:0;margin:2px 0;font-size:12px;color:#44506a}ul.checks li{display:inline-block;margin-right:12px}
.level-box{overflow-x:auto}.tune{display:flex;flex-wrap:wrap;gap:4px 12px;align-items:flex-start}
.abc-score{flex:1 1 380px;min-width:0}.tune>pre{flex:1 1 220px;min-width:0}svg.level{display:block;image-rendering:pixelated}
img.drawing{display:block;width:128px;height:128px;object-fit:contain;border:1px solid #e4e7ec;background:#fff}
.legend{font-size:12px;color:#44506a}.tile{margin-right:10px;white-space:nowrap}
.tile i{display:inline-block;width:10px;height:10px;margin-right:3px;vertical-align:-1px;border:1px solid #0002}
details>summary{cursor:pointer;font-weight:600;margin:8px 0 4px}
.scroll{overflow-x:auto}.diag{font-weight:700}.nowrap{white-space:nowrap}table.compare td:not(:first-child){padding-left:18px}nav a{margin-right:12px}
"""


def render(specs: list[SpecData]) -> str:
    """The whole page for these specs (a comparison table first when there are several)."""
    names = ", ".join(dict.fromkeys(d.spec.name for d in specs))
    heads = headings(specs)
    parts = [tag("h1", f"engine report: {names}"), tag("p", f"engine {__version__}", class_="meta")]
    if len(specs) > 1:
        parts.append(tag("nav", join(tag("a", title, href=f"#{anchor}") for title, anchor in heads)))
        parts.append(tag("h3", "headline numbers (a sweep: its best variant)"))
        parts.append(comparison_table(specs, heads))
    parts.extend(section(d, *head) for d, head in zip(specs, heads))
    head = join([Html('<meta charset="utf-8">'), Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                 tag("title", f"engine report: {names}"), Html(f"<style>{CSS}</style>")])
    body = join(parts)
    return f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>{head}</head>\n<body><main>{body}</main>{scripts(body)}</body>\n</html>\n"


def headings(specs: list[SpecData]) -> list[tuple[str, str]]:
    """(title, anchor) of each section: the spec's name, and on a page with a spec read from git each
    side's revision too (`scenes @ HEAD~1 (abc1234)`, `scenes @ working tree`), so the sides differ."""
    if not any(d.revision for d in specs):
        return [(d.spec.name, d.spec.name) for d in specs]
    titles = [f"{d.spec.name} @ {d.revision or 'working tree'}" for d in specs]
    return [(title, re.sub(r"\s+", "-", title)) for title in titles]


def section(data: SpecData, title: str, anchor: str) -> Html:
    spec = data.spec
    state = summary(data.statuses) if data.record else "no record"
    parts = [tag("h2", title), tag("p", spec.get("description") or "")]
    parts.append(tag("p", join([tag("b", "spec "), tag("code", data.label), "   ", tag("b", "seed "), str(spec.get("seed")),
                                "   ", tag("b", "record "), tag("code", data.record_file.name), "   ", tag("b", "status "),
                                tag("span", state, class_="state " + ("ok" if state == CURRENT else "stale"))]),
                     class_="meta"))
    if data.record is None:
        parts.append(tag("p", f"no record: run `engine run {data.label}` first", class_="missing"))
    parts.append(tag("h3", "what this spec sets (fields that differ from the defaults)"))
    parts.append(fields_list(data))
    parts.append(tag("h3", "stages"))
    parts.append(stage_table(data))
    if data.record is None:
        return tag("section", join(parts), class_="spec", id=anchor)
    parts.append(tag("h3", "training"))
    parts.append(training_charts(data) or tag("p", "no train stage in this record", class_="note"))
    best = None
    if data.is_sweep():
        ranking, best = sweep_table(data)
        parts.extend([tag("h3", "variants, ranked"), ranking])
        searched = search_chart(data)
        if searched:
            parts.extend([tag("h3", "search: the metric per trial, and the best so far"), tag("div", searched, class_="charts")])
    parts.append(metrics_tables(data))
    samples = samples_section(data, best)
    if samples:
        parts.extend([tag("h3", "samples: before and after fine-tuning"), samples])
    return tag("section", join(parts), class_="spec", id=anchor)


def fields_list(data: SpecData) -> Html:
    """The fields that differ from the defaults, and each swept path with its values."""
    swept: dict[str, list] = {}
    for _, values, _ in data.spec.variants:  # the spec as it is now, record or not
        for path, value in values.items():
            swept.setdefault(path, [])
            if value not in swept[path]:
                swept[path].append(value)
    items = [join([tag("code", path), " ", value]) for path, value in changed_fields(data.spec.tree, set(swept))]
    items += [join([tag("code", path), " ", tag("span", "swept: " + ", ".join(field_text(v) for v in values), class_="ok")])
              for path, values in swept.items()]
    return tag("ul", join(tag("li", item) for item in items), class_="fields")
