"""`engine report`: one self-contained HTML page from records and the store, driven through the CLI
with the fast fake stages (tests/fake_stages.py); the files the fakes do not write (the training
log, the samples) are put into their store entries by hand."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from engine.cli import main
from filled_runs import HISTORY, SPEC, out_dir, put, run_and_fill, run_tunes


def report(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["report", *args, "-o", "out.html"]) == 0
    assert "report written to out.html" in capsys.readouterr().out
    return Path("out.html").read_text(encoding="utf-8")


def test_a_report_has_the_stages_charts_metrics_and_both_sides_samples(project, capsys):
    page = report(capsys, run_and_fill(project))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('<svg class="chart"') == 2  # loss, learning rate
    assert "training loss" in page and "validation loss" in page
    stages = page[page.index('<table class="stages"'):]
    stages = stages[:stages.index("</table>")]
    for node in ("model", "data", "train", "evaluate", "evaluate[baseline]", "generate", "generate[baseline]"):
        assert f"<code>{node}</code>" in stages
    assert stages.count(">current</span>") == 7
    assert "the before text" in page and "more after" in page
    assert "before fine-tuning" in page and "fine-tuned" in page
    copied = '<mark title="6 characters shared with the training data">upon a</mark> time the after text'
    assert copied in page  # the copied passage, highlighted where it starts
    assert "follows_format" in page and "turns" in page  # each sample's check results
    assert "<code>train.epochs</code>" in page and "train.learning_rate" not in page  # 5e-5 is the default
    assert "A &lt;b&gt;bold&lt;/b&gt; experiment" in page


def test_text_from_records_and_samples_is_escaped_and_nothing_is_fetched(project, capsys):
    page = report(capsys, run_and_fill(project))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()  # the page has no script at all, so any is injected
    assert not re.search(r"https?://", page)  # no CDN, no namespace URL, nothing to fetch
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\((?!#)", page, re.I)


def test_an_edited_spec_marks_stages_out_of_date(project, capsys):
    spec = run_and_fill(project)
    path = project / spec
    path.write_text(path.read_text().replace("epochs: 1", "epochs: 2"))
    page = report(capsys, spec)
    assert ">out of date</span>" in page
    assert '<tr class="stale"><td><code>train</code>' in page


def test_a_missing_store_entry_says_not_in_store(project, capsys):
    spec = run_and_fill(project)
    for node in ("train", "generate[baseline]"):
        shutil.rmtree(out_dir(project, "r", node).parent)
    page = report(capsys, spec)
    assert "train: training log not in store" in page
    assert "generate[baseline]: not in store" in page
    assert "more after" in page  # the other side is still there
    assert page.count("not in store") >= 4  # and the stage table's output column says so for both


def test_a_spec_without_a_record_gets_a_section_that_says_so(project, capsys):
    page = report(capsys, "specs/x.yaml")
    assert "no record: run `engine run specs/x.yaml` first" in page
    assert ">not run</span>" in page


def test_a_sweep_draws_every_variant_on_one_loss_chart(project, capsys, fakes, monkeypatch):
    monkeypatch.setenv("FAKE_LOSS", "1")
    text = SPEC.replace("name: scenes", "name: sweep") + "sweep:\n  grid:\n    train.learning_rate: [1.0e-4, 3.0e-4]\n  metric: evaluate.loss\n"
    (project / "specs" / "s.yaml").write_text(text)
    assert main(["run", "specs/s.yaml"]) == 0
    record = json.loads((project / "specs" / "s.lock.json").read_text())
    labels = [v["name"] for v in record["sweep"]["variants"]]
    assert labels == ["learning_rate=0.0001", "learning_rate=0.0003"]
    for variant in record["sweep"]["variants"]:
        put(project, "s", variant["nodes"]["train"], "log_history.json", HISTORY)
    page = report(capsys, "specs/s.yaml")
    charts = re.findall(r'<svg class="chart" role="img" aria-label="loss per step".*?</svg>', page, re.S)
    assert len(charts) == 1
    legend = re.findall(r"<text[^>]*>([^<]*)</text>", charts[0])
    assert [label for label in labels if label in legend] == labels
    assert "variants, ranked" in page and "(best)" in page


def test_several_specs_make_one_page_with_a_comparison(project, capsys):
    first = run_and_fill(project)
    second = run_and_fill(project, "q", SPEC.replace("name: scenes", "name: other").replace("epochs: 1", "epochs: 2"))
    page = report(capsys, first, second)
    assert '<section class="spec" id="scenes">' in page and '<section class="spec" id="other">' in page
    assert '<table class="metrics compare">' in page
    assert page.count('<svg class="chart"') == 4


def test_classification_tables_show_the_confusion_matrix():
    from engine.report.tables import class_table

    metrics = {"per_class": {"<a>": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2},
                             "b": {"precision": 0.5, "recall": 1.0, "f1": 0.667, "support": 1}},
               "confusion_matrix": {"labels": ["<a>", "b"], "rows_true_columns_predicted": [[1, 1], [0, 1]]},
               "majority_accuracy": 0.667, "majority_class": "<a>", "majority_macro_f1": 0.4}
    html = class_table("evaluate", metrics)
    assert "<th>→ &lt;a&gt;</th>" in html and "<a>" not in html
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert re.findall(r"<td>(?:<span[^>]*>)?(\d+)", rows[1])[-2:] == ["1", "1"]  # true <a>: predicted <a> 1, b 1
    assert '<span class="diag">1</span>' in html and "majority class" in html


def test_a_level_is_drawn_top_to_bottom():
    from engine.report.tiles import ROWS, TILE, level_svg

    svg = level_svg("XX------------\n", "X-----------E-\nX-------------\n")
    assert f'<rect x="0" y="{(ROWS - 1) * TILE}" width="{3 * TILE}" height="{TILE}" fill="#8b4a1c"/>' in svg  # bottom: ground
    assert f'<rect x="{TILE}" y="{TILE}" width="{TILE}" height="{TILE}" fill="#d62828"/>' in svg  # enemy, second row from the top
    assert f'x1="{TILE}"' in svg  # where the prompt ends


def test_matplotlib_is_imported_only_by_the_report():
    code = ("import sys, engine.api, engine.cli, engine.report, engine.report.page; "
            "from engine.cli import build_parser; build_parser(); "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_one_spec_at_several_revisions_makes_one_page(project, capsys):
    from projects import git

    spec = run_and_fill(project)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first")
    (project / spec).write_text(SPEC.replace("5.0e-5", "1.0e-4"))  # edited, not run: the working tree is stale
    page = report(capsys, spec, "--rev", "HEAD")
    assert f"HEAD:{spec}" in page and page.count("out of date") >= 1
    assert main(["report", "specs/r.yaml", "specs/x.yaml", "--rev", "HEAD"]) == 2


def test_each_revision_of_one_spec_is_titled_with_its_revision_and_commit(project, capsys):
    from projects import git

    spec = run_and_fill(project)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first")
    (project / spec).write_text(SPEC.replace("epochs: 1", "epochs: 2"))
    git(project, "commit", "-qam", "second")
    first, second = (git(project, "rev-parse", "--short", rev).strip() for rev in ("HEAD~1", "HEAD"))
    page = report(capsys, spec, "--rev", "HEAD~1", "--rev", "HEAD")
    titles = [f"scenes @ HEAD~1 ({first})", f"scenes @ HEAD ({second})", "scenes @ working tree"]
    assert re.findall(r"<h2>(.*?)</h2>", page) == titles
    compare = page[page.index('<table class="metrics compare">'):]
    assert re.findall(r'<th><a href="#([^"]*)">(.*?)</a></th>', compare[:compare.index("</tr>")]) == \
        [(t.replace(" ", "-"), t) for t in titles]  # each column is headed by its side, linked to its section
    assert [f'<section class="spec" id="{t.replace(" ", "-")}">' in page for t in titles] == [True] * 3


def test_non_ascii_values_in_the_spec_show_as_text(project, capsys):
    text = SPEC.replace('prompts: ["Once"]', 'prompts: ["从前有座山", "Once"]')
    page = report(capsys, run_and_fill(project, text=text))
    fields = page[page.index('<ul class="fields">'):]
    fields = fields[:fields.index("</ul>")]
    assert "<code>generate.prompts</code>" in fields and "从前有座山" in fields
    assert "\\u" not in fields


def test_a_training_log_of_one_step_draws_a_dot_on_a_range_around_it(project, capsys):
    spec = run_and_fill(project)
    put(project, "r", "train", "log_history.json", [{"loss": 2.5, "learning_rate": 5e-5, "step": 10}])
    page = report(capsys, spec)
    charts = re.findall(r'<svg class="chart".*?</svg>', page, re.S)
    assert len(charts) == 2  # loss, learning rate
    for chart in charts:
        assert re.search(r'<use href="#m[0-9a-f]+" x="[^"]+" y="[^"]+" style="fill: #1f77b4', chart)  # the point's dot
        labels = re.findall(r"<text[^>]*>([^<]*)</text>", chart)
        steps = [float(t) for t in labels[:labels.index("step")]]
        assert steps[0] <= 0 and steps[-1] >= 20 and all(s == int(s) for s in steps)  # not 9.6 ... 10.4
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", charts[0])
    losses = [float(t) for t in labels[labels.index("step") + 1:labels.index("loss")]]
    assert losses[0] <= 1.5 and losses[-1] >= 3.5  # half the loss either side, not 2.4 ... 2.6


def test_abc_samples_get_the_inlined_renderer_and_one_score_each(project, capsys):
    from engine.report.sheet import abcjs

    page = report(capsys, run_tunes(project))
    assert page.count('<div class="abc-score" data-abc="') == 4  # one per sample, both sides
    assert 'data-abc="X: 1\nT: A Test Reel\nM: 4/4\nL: 1/8\nK:D\n|:d2fd A2FA|' in page  # prompt + completion
    assert "ab|c&lt;d&gt;e|</pre>" in page  # the text beside it, escaped
    assert page.count(abcjs()) == 1 and page.count("<script>") == 2  # abcjs once, then the call that draws
    assert "ABCJS.renderAbc" in page and page.index("</main>") < page.index("<script>")
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import", page.replace(abcjs(), ""), re.I)  # nothing to fetch


def test_a_page_without_tunes_has_no_renderer(project, capsys):
    page = report(capsys, run_and_fill(project))
    assert 'class="abc-score"' not in page and "ABCJS" not in page and "<script" not in page
    assert len(page.encode()) < 100_000  # abcjs alone is ~500 KB


def test_the_vendored_abcjs_is_the_pinned_file_and_the_package_carries_it():
    import hashlib
    import tomllib

    from engine.report import sheet

    vendor = Path(sheet.__file__).parent / "vendor" / "abcjs"
    readme = (vendor / "README.md").read_text()
    version, digest = re.search(r"abcjs \*\*(\S+)\*\*", readme)[1], re.search(r"sha256\s+`([0-9a-f]{64})`", readme)[1]
    script = (vendor / "abcjs-basic-min.js").read_bytes()
    assert hashlib.sha256(script).hexdigest() == digest
    assert f"abcjs_basic v{version} ".encode() in script[:1500]
    assert "Permission is hereby granted" in (vendor / "LICENSE.md").read_text()  # MIT, kept beside it
    assert not re.search(rb"</script|<!--", script, re.I)  # inlined as it is, it cannot end its <script> early
    globs = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["engine"]
    package = Path(sheet.__file__).parents[1]
    carried = {p for g in globs for p in package.glob(g)}
    assert {vendor / n for n in ("abcjs-basic-min.js", "LICENSE.md", "README.md")} <= carried
