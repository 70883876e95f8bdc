"""ABC tunes drawn as sheet music in the browser, with their text.

The page carries a pinned copy of abcjs (vendor/abcjs/: version, source and sha256 in its
README, MIT license) inline, so it still opens without a network; and only when it has a tune to
draw, so a page without tunes stays small and has no script at all. Each tune is an empty
`<div class="abc-score" data-abc="...">` holding the prompt and its completion (the text the
`abc` check reads); on load a short script renders each into an SVG with `ABCJS.renderAbc`. A tune
abcjs cannot draw (it throws, or finds no staff to draw) gets a short note instead of a score,
never a console error: its text is shown either way (beside the score where the cell is wide
enough, under it where it is not).
"""
from __future__ import annotations

import json
from importlib.resources import files

from engine.report.markup import Html, tag

ABCJS = "vendor/abcjs/abcjs-basic-min.js"
# Only markup built here holds this unescaped (text from samples has its quotes escaped), so the
# page can tell from its own body whether it needs the renderer.
TARGET = 'class="abc-score"'
FAILED = "abcjs could not draw this text as sheet music."

RENDER = """(function () {
  var targets = document.querySelectorAll("div.abc-score");
  for (var i = 0; i < targets.length; i++) {
    var target = targets[i], drawn = false;
    try {
      var tunes = ABCJS.renderAbc(target, target.getAttribute("data-abc"), {responsive: "resize"});
      drawn = tunes.length > 0 && tunes[0].lines.length > 0 && target.querySelector("svg") !== null;
    } catch (error) {
      drawn = false;
    }
    target.setAttribute("data-drawn", drawn ? "yes" : "no");
    if (!drawn) {
      var note = document.createElement("p");
      note.className = "note";
      note.textContent = %s;
      target.removeAttribute("style");  // abcjs sizes its container before it draws
      target.replaceChildren(note);
    }
  }
})();"""


def is_tunes(spec) -> bool:
    """Whether the spec's samples are ABC tunes: its samples get the `abc` check."""
    checks = spec.get("generate.checks") or []
    return "abc" in checks


def score(prompt: str, completion: str) -> Html:
    """Where the tune (prompt and completion, as the `abc` check reads it) is drawn on load."""
    return tag("div", "", class_="abc-score", data_abc=prompt + completion)


def abcjs() -> str:
    """The vendored abcjs, as it is on disk."""
    return files("engine.report").joinpath(ABCJS).read_text(encoding="utf-8")


def scripts(body: str) -> Html:
    """The renderer and the call that draws every tune, or nothing when `body` has no tune."""
    if TARGET not in body:
        return Html("")
    return Html(f"<script>{abcjs()}</script>\n<script>{RENDER % json.dumps(FAILED)}</script>")
