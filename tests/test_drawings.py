"""Drawings: the SVG normal form, the `svg` check on hand-made drawings, the clip-art corpus."""
from __future__ import annotations

import json

import pytest

from engine.checks import svg
from engine.corpora import clipart
from engine.errors import StageError
from engine.formats import svg_normal, svg_values
from engine.packaged import DebianPackage

INKSCAPE = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!-- Created with Inkscape (http://www.inkscape.org/) -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:cc="http://web.resource.org/cc/"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
     width="75pt" height="37.5pt" id="svg1" sodipodi:docname="flag.svg" inkscape:version="0.40">
  <metadata><rdf:RDF><cc:Work rdf:about=""><dc:title>Red flag</dc:title>
    <dc:subject><rdf:Bag><rdf:li>flag</rdf:li><rdf:li>red</rdf:li></rdf:Bag></dc:subject>
    <dc:creator><cc:Agent><dc:title>Someone</dc:title></cc:Agent></dc:creator></cc:Work></rdf:RDF></metadata>
  <defs id="defs3">
    <linearGradient id="used"><stop offset="0" style="stop-color:#FF0000;stop-opacity:1"/></linearGradient>
    <linearGradient id="unused"><stop offset="1" style="stop-color:#00FF00"/></linearGradient>
    <linearGradient id="chained" xlink:href="#used" x1="0.123456" y1="0"/>
  </defs>
  <sodipodi:namedview id="base" pagecolor="#ffffff" inkscape:zoom="1.0"/>
  <g id="layer1" inkscape:label="Layer 1" inkscape:groupmode="layer">
    <rect id="rect2" x="10.04" y="0" width="80.0001" height="40" inkscape:export-xdpi="90"
          style="fill:url(#chained);fill-opacity:1;stroke:#000000;stroke-width:1.0;stroke-miterlimit:4;-inkscape-font-specification:Sans"/>
    <path id="path4" d="M 10,20 L 30.000,40.4444 A 5,5 0 1,0 50,60 z" style="fill:#ffffff" onclick="alert(1)"/>
    <image id="bitmap" x="0" y="0" width="10" height="10" xlink:href="data:image/png;base64,iVBORw0KGgo="/>
    <script>alert(2)</script>
    <g style="display:none"><circle r="5"/></g>
  </g>
</svg>
"""

NORMAL = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50">
<defs>
<linearGradient id="used">
<stop offset="0" stop-color="#f00"/>
</linearGradient>
<linearGradient id="chained" href="#used" x1="0.123" y1="0"/>
</defs>
<rect x="10" y="0" width="80" height="40" fill="url(#chained)" stroke="#000"/>
<path d="M10 20L30 40.4A5 5 0 1 0 50 60z" fill="#fff"/>
</svg>"""


def test_an_editor_file_becomes_the_normal_form():
    assert svg_normal.normalise(INKSCAPE) == NORMAL
    assert svg_normal.normalise(NORMAL) == NORMAL  # the normal form is a fixed point


def test_what_cannot_be_normalised_is_none():
    assert svg_normal.normalise("<svg") is None  # not XML
    assert svg_normal.normalise('<html xmlns="http://www.w3.org/1999/xhtml"/>') is None  # not SVG
    assert svg_normal.normalise('<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>') is None  # no size
    assert svg_normal.normalise('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>') is None  # nothing drawn
    sheet = '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><style>rect{fill:red}</style><rect width="1" height="1"/></svg>'
    assert svg_normal.normalise(sheet) is None  # CSS rules would outrank the attributes styles become


def test_inherited_values_are_dropped_only_where_nothing_can_change_them():
    drawing = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">
      <g fill="red" transform="scale(2)"><rect width="1" height="1" fill="#FF0000"/><rect width="2" height="2" fill="#000"/></g>
      <defs><path id="p" d="M0 0h1v1z" fill="#000000"/></defs><use href="#p" fill="blue"/></svg>"""
    assert svg_normal.normalise(drawing).splitlines()[1:-1] == [
        '<g fill="red" transform="scale(2)">',
        '<rect width="1" height="1"/>',  # red, as its parent
        '<rect width="2" height="2" fill="#000"/>',  # black is the initial value, but not the parent's
        "</g>",
        "<defs>",
        '<path id="p" d="M0 0h1v1z" fill="#000"/>',  # a <use fill="blue"> would turn it blue without it
        "</defs>",
        '<use href="#p" fill="blue"/>',
    ]


def test_a_switch_keeps_its_groups():
    drawing = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><switch><foreignObject/>'
               '<g><rect width="1" height="1"/><rect width="2" height="2" fill="red"/></g></switch></svg>')
    assert "<switch>\n<g>\n" in svg_normal.normalise(drawing)  # unwrapped, the switch would draw the first rect only


@pytest.mark.parametrize("value, text", [(1234.5678, "1234.6"), (12.345, "12.3"), (0.012345, "0.0123"), (10.0, "10"),
                                         (0.5, "0.5"), (-0.00001, "0"), (2.8e-14, "0"), (-3.0, "-3"), (1e6, "1000000")])
def test_numbers_keep_three_significant_digits(value, text):
    assert svg_values.number(value) == text


def test_path_data():
    assert svg_values.path_data("m 1.0,2.0 l -3.25e1,4 h5 v 6 z", 1) == "m1 2l-32.5 4h5v6z"
    assert svg_values.path_data("M0 0a1 1 0 011 1", 1) == "M0 0a1 1 0 0 1 1 1"  # packed arc flags
    assert svg_values.path_data("M 0 0 L 1", 1) is None  # an odd coordinate
    assert svg_values.path_data("10 20", 1) is None  # no command
    assert svg_values.path_data("M 0 0 Q 1 2 3 4 x", 1) is None


def test_tokens_count_digits_words_and_marks():
    assert svg_normal.tokens('<rect x="10"/>') == 10  # < rect x = " 1 0 " / >: 10 is two digits
    assert svg_normal.tokens("") == 0


# --- the svg check ---------------------------------------------------------------------------

GOOD = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="5" fill="red"/>'
        '<circle cx="5" cy="7" r="2" style="fill:#00f;stroke:black"/><path d="M0 0L10 10" stroke="red"/></svg>')
OTHER = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4" fill="green"/></svg>')


def test_a_good_drawing_parses_renders_and_is_counted():
    result, image = svg.judge("<!-- shapes: a flag -->\n" + GOOD + "\ntrailing words")
    assert result == {"parses": True, "renders": True, "elements": 3, "colours": 3}  # red, #00f, black
    assert image.size == (svg.THUMBNAIL, svg.THUMBNAIL)


@pytest.mark.parametrize("text, parses", [
    ("no drawing here", False),
    ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="', False),  # cut off
    ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect></svg>', False),  # not well-formed
    ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"></svg>', True),  # nothing drawn
    ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="4" height="4" fill="none"/></svg>', True),
    ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><text x="1" y="5">Hi</text></svg>', True),  # no fonts
    ('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"><rect width="4" height="4"/></svg>', True),  # no size
])
def test_bad_drawings_do_not_render(text, parses):
    result, image = svg.judge(text)
    assert (result["parses"], result["renders"], image) == (parses, False, None)


def test_a_drawing_never_reads_a_file(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), "black").save(tmp_path / "secret.png")
    linked = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><image href="{tmp_path / "secret.png"}" '
              f'width="10" height="10"/></svg>')
    root = svg.parse(linked)
    assert svg.drawn(svg.render(svg.parse(linked.replace("<image", '<rect width="1" height="1"/><image')), 16))
    assert not svg.drawn(svg.render(root, 16))  # the file's black pixels never appear


def test_nearest_training_drawing_and_copies():
    pictures, names = svg.reference(["<!-- a: good -->\n" + GOOD, "<!-- b: other -->\n" + OTHER, "not a drawing"])
    assert names == ["<!-- a: good -->", "<!-- b: other -->"]
    same, _ = svg.judge(GOOD.replace('width="10"', 'width="10.0"'), pictures, names)
    assert same["nearest"] == 0 and same["copy"] and same["nearest_source"] == "<!-- a: good -->"
    moved = GOOD.replace('cx="5" cy="7"', 'cx="3" cy="2"')
    result, _ = svg.judge(moved, pictures, names)
    assert result["nearest"] > svg.COPY_DISTANCE and not result["copy"] and result["nearest_source"] == "<!-- a: good -->"


def test_run_writes_thumbnails_and_metrics(tmp_path):
    class Context:
        out = tmp_path

        def training_texts(self):
            return ["<!-- a: good -->\n" + GOOD]

    samples = [{"prompt_index": 0, "sample": 0, "prompt": "<!-- a: good -->\n", "completion": GOOD},
               {"prompt_index": 0, "sample": 1, "prompt": "<!-- a: good -->\n", "completion": OTHER + "</svg>"},
               {"prompt_index": 1, "sample": 0, "prompt": "<!-- b -->\n", "completion": "<svg><rect"}]
    metrics = svg.run(samples, Context())
    assert metrics["svg_parse_rate"] == pytest.approx(2 / 3) and metrics["svg_render_rate"] == pytest.approx(2 / 3)
    assert metrics["svg_copy_rate"] == pytest.approx(1 / 3) and metrics["svg_elements"] == 2.0
    assert metrics["svg_colours"] == 2.0 and metrics["svg_nearest_distance"] > 0
    assert sorted(p.name for p in (tmp_path / "thumbnails").iterdir()) == ["0-0.png", "0-1.png"]
    assert samples[0]["svg"]["thumbnail"] == "thumbnails/0-0.png" and "thumbnail" not in samples[2]["svg"]
    json.dumps(samples)  # what samples.jsonl gets must be JSON


# --- the clip-art corpus ---------------------------------------------------------------------

needs_openclipart = pytest.mark.skipif(
    not (clipart.PACKAGE.digest_list().is_file() and clipart.PACKAGE.version() != "absent"),
    reason="the Debian package openclipart-svg is not installed: apt-get install openclipart-svg (as root)")


def test_a_missing_debian_package_names_the_install_command():
    missing = DebianPackage("no-such-package", "/nonexistent/folder")
    with pytest.raises(StageError, match="apt-get install no-such-package"):
        missing.locate("corpus x")
    assert missing.version() == "absent"


def test_drawing_metadata():
    title, keywords = clipart.describe(svg_normal.parse(INKSCAPE))
    assert (title, keywords) == ("Red flag", ["flag", "red"])  # the creator's name is not the title
    assert clipart.words("aiga_down_arrow_") == "aiga down arrow"


@needs_openclipart
def test_clipart_records_are_normal_drawings():
    records = [fields for fields, _ in clipart.records({"categories": ["decorations"], "max_tokens": 2000})]
    assert len(records) > 5 and {r["category"] for r in records} == {"decorations"}
    assert all(r["tokens"] <= 2000 and r["tokens"] == svg_normal.tokens(r["svg"]) for r in records)
    assert len({r["svg"] for r in records}) == len(records)
    for record in records[:3]:
        assert svg_normal.normalise(record["svg"]) == record["svg"]
        result, _ = svg.judge(record["svg"])
        assert result["parses"]
    assert set(records[0]) == {"category", "subcategory", "name", "title", "caption", "keywords", "svg", "tokens", "file"}


@needs_openclipart
def test_clipart_is_keyed_by_package_version_digest_list_and_normal_form():
    from engine.stages.data import corpus_inputs

    inputs = corpus_inputs({"corpus": "clipart-drawings"})
    assert inputs["package openclipart-svg"] == clipart.PACKAGE.version()
    assert inputs["corpus clipart-drawings"] == f"version {clipart.VERSION}"
    assert inputs["openclipart-svg/info/openclipart-svg.md5sums"] == clipart.PACKAGE.digest_list()


@needs_openclipart
def test_a_changed_clipart_file_is_an_error():
    path = clipart.drawings({"categories": ["decorations"]})[0]
    digests = clipart.PACKAGE.digests()
    clipart.PACKAGE.check(path, path.read_bytes(), digests)
    with pytest.raises(StageError, match="apt-get install --reinstall openclipart-svg"):
        clipart.PACKAGE.check(path, path.read_bytes() + b" ", digests)


def test_the_report_inlines_a_thumbnail_the_check_wrote(tmp_path):
    from engine.report.pictures import thumbnail

    (tmp_path / "thumbnails").mkdir()
    (tmp_path / "thumbnails" / "0-1.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "secret.png").write_bytes(b"private")
    html = thumbnail({"svg": {"thumbnail": "thumbnails/0-1.png"}}, tmp_path)
    assert html.startswith('<img class="drawing" src="data:image/png;base64,iVBORyBmYWtl"')
    assert thumbnail({"svg": {"thumbnail": "thumbnails/../secret.png"}}, tmp_path) == ""  # only the check's own files
    assert thumbnail({"svg": {"parses": False}}, tmp_path) == "" and thumbnail({"svg": {}}, None) == ""
