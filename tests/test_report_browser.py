"""The report in a real browser: headless Chromium renders it without console errors, and the
charts and samples are in the rendered page, ABC tunes drawn as sheet music, Chinese text in its
own glyphs. Skipped where no `chromium` is installed (.ci/run installs Debian's, and
`fonts-noto-cjk` for CJK text, when it can)."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

from engine.cli import main
from filled_runs import put, run_and_fill, run_tunes, samples

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (apt-get install chromium)")


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Headless Chromium; `--no-sandbox` because CI runs as root, where Chromium will not start sandboxed."""
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                           *args], capture_output=True, text=True, timeout=120)


def test_the_report_renders_in_chromium_without_console_errors(project, capsys, tmp_path):
    spec = run_and_fill(project)
    assert main(["report", spec, "-o", str(tmp_path / "report.html")]) == 0
    url = (tmp_path / "report.html").as_uri()
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line or "Failed to load resource" in line]
    assert console == [], console
    assert dom.stdout.count("<svg") >= 2  # the loss and learning-rate charts
    assert "the before text" in dom.stdout and "upon a</mark> time the after text" in dom.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout  # a sample's markup stays text
    shot = chromium(f"--screenshot={tmp_path / 'report.png'}", "--window-size=1200,1600", url)
    assert shot.returncode == 0 and (tmp_path / "report.png").stat().st_size > 10_000


def test_abc_samples_become_sheet_music_in_chromium(project, capsys, tmp_path):
    assert main(["report", run_tunes(project), "-o", str(tmp_path / "tunes.html")]) == 0
    dom = chromium("--dump-dom", (tmp_path / "tunes.html").as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line or "Failed to load resource" in line]
    assert console == [], console
    main_part = dom.stdout[:dom.stdout.index("</main>")]  # the inlined abcjs source after it holds svg markup too
    scores = re.findall(r'<div class="abc-score[^"]*" data-abc="[^"]*" data-drawn="(yes|no)"[^>]*>(.*?)</div><pre>',
                        main_part, re.S)
    # per sample row, baseline then fine-tuned: the baseline's headers-only tune, then 23, 5 and 21 notes
    assert [drawn for drawn, _ in scores] == ["no", "yes", "yes", "yes"]
    assert "abcjs could not draw this text" in scores[0][1] and "<svg" not in scores[0][1]
    for (_, inner), notes in zip(scores[1:], (23, 5, 21)):
        assert inner.count("<svg") == 1
        assert inner.count('class="abcjs-top-line"') >= 1  # a staff
        assert inner.count('data-name="note"') == notes
        assert inner.count('data-name="bar"') >= 1
    assert "|:d2fd A2FA|d2fd e2ce|" in main_part  # the text stays beside the score


CHINESE = "从前有座山，山里有座庙"
# Run in the page after the report: each character of the Chinese sample drawn alone, large, in the
# sample's own font, and a private-use character no font has. A character without a glyph is drawn
# as the same empty box (tofu) as the private-use one; with glyphs, every character differs.
PROBE = """<script>
const sample = [...document.querySelectorAll("main pre")].find(e => e.textContent.includes("从前"));
const canvas = Object.assign(document.createElement("canvas"), {width: 48, height: 48});
const pen = canvas.getContext("2d");
pen.font = "40px " + getComputedStyle(sample).fontFamily;
const draw = c => { pen.clearRect(0, 0, 48, 48); pen.fillText(c, 2, 40); return canvas.toDataURL(); };
const range = document.createRange();
range.selectNodeContents(sample);
const chars = [...new Set(sample.textContent.replace(/[，\\s]/g, ""))];
document.body.dataset.probe = JSON.stringify({width: range.getBoundingClientRect().width, chars: chars.length,
  shapes: new Set(chars.map(draw)).size, boxes: chars.filter(c => draw(c) === draw("\\ue000")).length});
</script>"""


def test_a_chinese_sample_is_drawn_in_its_glyphs_in_chromium(project, capsys, tmp_path):
    spec = run_and_fill(project)
    put(project, "r", "generate", "samples.jsonl", samples(CHINESE))
    assert main(["report", spec, "-o", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert CHINESE in page
    (tmp_path / "probe.html").write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = chromium("--dump-dom", (tmp_path / "probe.html").as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    probe = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom.stdout)[1]))
    assert probe["width"] > 0 and probe["chars"] == 7  # 从前有座山里庙: the sample was found
    assert probe["boxes"] == 0 and probe["shapes"] == probe["chars"], \
        f"Chinese text drawn as boxes ({probe}): apt-get install fonts-noto-cjk"
