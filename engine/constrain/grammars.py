"""The built-in grammars of `generate.constrain`: each format as its check reads it, in Lark
(llguidance's dialect: uppercase names are terminals, compiled to one regex each; lowercase are
rules, parsed by an Earley parser; `&` and `~` intersect and negate terminals).

A built-in constrains the document, not the completion alone: a prompt often holds its start
(the ABC header, the first columns of a level, `<svg xmlns=... viewBox="0 0`, a scene heading and
a speaker). `Builtin.begins` finds where the document starts in the prompt; the grammar reads the
prompt from there before the model writes (engine/constrain/forms.py). A prompt with no start of
one (an instruction) leaves the whole completion to the grammar.

tests/test_constrain.py holds each grammar to real items of its format: a grammar that rejects
real data is wrong, not the data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from engine.constrain import abc_metred


@dataclass(frozen=True)
class Builtin:
    lark: str
    begins: Callable[[str], int | None]  # where the document starts in a prompt; None: in the completion
    about: str  # one line for the schema and the logs
    unique_attributes: bool = False  # XML: each attribute once in a start tag (xml_attributes.py)
    close_in_time: bool = False  # XML: the last tokens of the budget close the document (xml_closing.py)


def _first(pattern: str) -> Callable[[str], int | None]:
    compiled = re.compile(pattern, re.M)

    def begins(prompt: str) -> int | None:
        found = compiled.search(prompt)
        return found.start() if found else None

    return begins


# -- ABC notation (engine/checks/abc_notation.py, abc_reading.py) -------------------------------
# The header: X: first, then fields in any order with one M: and one L: (the check requires X, M,
# L, K), K: last (or L: just after it, as a few of O'Neill's tunes have it). The body: lines of
# music (notes with accidentals, octave marks and lengths; rests; chords [CEG]; grace notes {g};
# chord symbols "Am"; decorations !trill! ~ . H; tuplets (3; slurs, ties, broken rhythm; bar lines
# | || |] [| |: :| :: with endings |1 :|2 [1; inline fields [K:D]; a trailing \ or % comment),
# fields (K:, M:, L:, P:, ...), % comments and w: lyrics. A blank line ends the tune; at least one
# line of music.
ABC = r"""
start: header body END?
header: X_FIELD other* (M_FIELD other* L_FIELD | L_FIELD other* M_FIELD) other* K_FIELD
      | X_FIELD other* M_FIELD other* K_FIELD L_FIELD
other: FIELD | COMMENT
body: aside* MUSIC (MUSIC | aside)*
aside: BODY_FIELD | K_FIELD | M_FIELD | L_FIELD | COMMENT | LYRICS

END: "\n"
X_FIELD: /X:[ \t]*[0-9]{1,6}[ \t]*\n/
M_FIELD: /M:[ \t]*(C\|?|\(?[0-9]{1,2}(\+[0-9]{1,2})*\)?\/[0-9]{1,2}|none)[ \t]*(%[^\n]*)?\n/
L_FIELD: /L:[ \t]*1\/[0-9]{1,3}[ \t]*(%[^\n]*)?\n/
K_FIELD: /K:[ \t]*(none|[Hh][Pp]|[A-G][#b]?[ \t]*[A-Za-z]{0,10})?([ \t]+[a-z]+(=[^ \t\n%]+)?)*[ \t]*(%[^\n]*)?\n/
FIELD: /[A-JN-WYZ]:[^\n]{0,200}\n/
BODY_FIELD: /[NPQRTVW]:[^\n]{0,200}\n/
COMMENT: /%[^\n]{0,200}\n/
LYRICS: /w:[^\n]{0,200}\n/

MUSIC: SYMBOL+ /\\?[ \t]*(%[^\n]*)?\n/
SYMBOL: NOTE | REST | CHORD | GRACE | BAR | ENDING | INLINE_FIELD | ANNOTATION | DECORATION | TUPLET
      | /[()\-`y]/ | /[<>]{1,3}/ | /[ \t]+/
LENGTH: /[0-9]{0,2}(\/{1,3}[0-9]{0,2})?/
NOTE: /(\^\^|__|\^|_|=)?[A-Ga-g][,']*/ LENGTH
REST: /[zxZX]/ LENGTH
CHORD: "[" (NOTE | /[ \-]/)+ "]" LENGTH
GRACE: /\{\/?/ (NOTE | /[ \-]/)+ "}"
BAR: /(\[\||:*\|+\]?:*|::+|\.\|)/ /[1-9]([,\-][1-9])*/?
ENDING: /\[[1-9]([,\-][1-9])*/
INLINE_FIELD: /\[[A-Za-z]:[^\]\n]{0,40}\]/
ANNOTATION: /"[^"\n]{0,40}"/
DECORATION: /![^!\n]{1,20}!/ | /\+[^+\n]{1,20}\+/ | /[~.HLMOPSTuv]/
TUPLET: /\([2-9](:[0-9]?(:[0-9]?)?)?/
"""

# -- Super Mario Bros levels (engine/checks/levels.py, engine/corpora/mario_levels.py) -----------
# One column per line, 14 tiles bottom to top, over the tile alphabet; the document ends after a
# whole column.
LEVEL_TILES = "-oxEXS?Q<>[]Bb"
LEVEL = r"""
start: COLUMN+
COLUMN: /[-oxEXS?Q<>\[\]Bb]{14}\n/
"""


def _level_begins(prompt: str) -> int | None:
    """Where the run of tile lines at the end of the prompt starts (the last may be a part)."""
    lines = prompt.split("\n")
    start = len(prompt) - len(lines[-1])
    if lines[-1] and not (len(lines[-1]) <= 14 and set(lines[-1]) <= set(LEVEL_TILES)):
        return None
    for line in reversed(lines[:-1]):
        if len(line) != 14 or not set(line) <= set(LEVEL_TILES):
            break
        start -= len(line) + 1
    return start if start < len(prompt) else None


# -- Plays (engine/checks/play_format.py, engine/corpora/shakespeare.py) -------------------------
# Headings, speaker lines (`**VIOLA**`, with Markdown's two trailing spaces), stage directions in
# italics (`_Exit_`, `*Exit.*`, over up to 16 lines), speech lines of at most 100 characters. A
# dialogue, as the check wants it: at least two turns, each a speaker then at least one line of
# speech (a direction or a blank line may come between a speaker's lines); it may end after the
# second turn. Speech, headings and directions hold a letter (`#` or `*` alone is not a line of a
# play: the check says so too). Before the first speaker, headings, directions and up to eight lines of text (a
# song: Measure for Measure, IV.1).
PLAY = r"""
start: lead (SPEECH lead){0,8} turn turn+
lead: (HEADING | BLANK | DIRECTION)*
turn: SPEAKER (DIRECTION | BLANK)* SPEECH (SPEECH | DIRECTION | BLANK | HEADING)*

BLANK: "\n"
HEADING: /#{1,6} [^\n]{1,100}\n/ & WORDED
SPEAKER: /\*\*[A-Z][^*\n]{0,40}\*\*[ \t]{0,2}\n/
DIRECTION: (/_{1,2}[^\n]*_[ \t]*\n/ | /_{1,2}[^_\n]+(\n[^_\n]+){1,15}_[ \t]*\n/ | /\*[^*\n]+(\n[^*\n]+){0,15}\*[ \t]*\n/) & WORDED
SPEECH: /[^\s*_#][^\n]{0,99}\n/ & WORDED
WORDED: /[^\p{L}]*\p{L}(.|\n)*/
"""

# -- SVG in normal form (engine/formats/svg_normal.py) --------------------------------------------
# The root with its viewBox and paint, one element per line, containers closed by their own tag,
# text with its spans inline, then </svg>. Path data, colours and lengths are typed; any other
# attribute takes any XML attribute value. Path data is as the normal form writes it
# (engine/formats/svg_values.py: `M10 20L30.5 40Z`): each command with whole groups of its
# arguments (two numbers for L, six for C, seven for A with its two flags), and at most
# PATH_COMMANDS commands of at most PATH_REPEATS groups each. The bounds hold every path of the
# clip-art corpus's drawings of up to 512 tokens (longest: 52 commands, 20 numbers after one
# letter; measured over all 1,109 once, tests/test_constrain.py takes the longest and a share of
# the rest); a model that loops on path data must close the path instead of writing
# "L4.4L6.4L4.4..." until its tokens run out.
CONTAINERS = ("g", "defs", "linearGradient", "radialGradient", "pattern", "clipPath", "mask", "marker", "symbol",
              "switch", "a", "filter")
LEAVES = ("path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "use", "stop", "linearGradient",
          "radialGradient", "pattern", "clipPath", "mask", "marker", "symbol", "filter", "image", "view")
COLOURS = ("fill", "stroke", "stop-color", "flood-color", "lighting-color", "color")
LENGTHS = ("x", "y", "width", "height", "cx", "cy", "r", "rx", "ry", "x1", "y1", "x2", "y2", "fx", "fy", "stroke-width",
           "opacity", "fill-opacity", "stroke-opacity", "stop-opacity", "offset", "font-size", "stroke-miterlimit")


PATH_COMMANDS = 64
PATH_REPEATS = 16


def _path_data() -> str:
    number = r"-?[0-9]+(\.[0-9]+)?"
    pair = f"{number} {number}"

    def command(letters: str, arguments: str) -> str:  # the letter, then 1 to PATH_REPEATS groups
        return f"[{letters}]{arguments}( {arguments}){{0,{PATH_REPEATS - 1}}}"

    move = command("Mm", pair)
    others = "|".join((move, command("LlTt", pair), command("HhVv", number), command("Cc", f"{pair} {pair} {pair}"),
                       command("SsQq", f"{pair} {pair}"), command("Aa", f"{number} {number} {number} [01] [01] {pair}"),
                       "[Zz]"))
    return f"/({move}({others}){{0,{PATH_COMMANDS - 1}}})?/"


def _svg() -> str:
    def names(items) -> str:
        return "|".join(re.escape(item) for item in items)

    containers = "\n".join(f'{tag.lower()}_el: OPEN_{tag.upper()} element* "</{tag}>\\n"\nOPEN_{tag.upper()}: "<{tag}" ATTR* ">\\n"'
                           for tag in CONTAINERS)
    return rf"""
start: ROOT element+ /<\/svg>\n?/
element: LEAF | TEXT | {" | ".join(f"{tag.lower()}_el" for tag in CONTAINERS)}
{containers}

ROOT: "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"" NUMBER " " NUMBER " " NUMBER " " NUMBER "\"" ATTR* ">\n"
LEAF: /<({names(LEAVES)}|fe[A-Z][A-Za-z]*)/ ATTR* "/>\n"
TEXT: /<text/ ATTR* ">" (CHARS | SPAN)* "</text>\n"
SPAN: /<(tspan|textPath)/ ATTR* ">" CHARS* /<\/(tspan|textPath)>/
ATTR: " d=\"" PATH "\""
    | " " /({names(COLOURS)})/ "=\"" COLOUR "\""
    | " " /({names(LENGTHS)})/ "=\"" LENGTH "\""
    | " " (NAME & ~/(d|{names(COLOURS)}|{names(LENGTHS)})/) "=\"" VALUE "\""
NAME: /[A-Za-z][A-Za-z0-9:_.\-]*/
VALUE: /([^"<&\n]|&(amp|lt|gt|quot|apos|#[0-9]{{1,6}}|#x[0-9a-fA-F]{{1,6}});)*/
CHARS: /([^<&\n]|&(amp|lt|gt|quot|apos|#[0-9]{{1,6}}|#x[0-9a-fA-F]{{1,6}});)+/
NUMBER: /-?([0-9]+(\.[0-9]+)?|\.[0-9]+)/
LENGTH: NUMBER /(%|px|pt|pc|mm|cm|in|em|ex)?/
COLOUR: /#[0-9a-fA-F]{{3}}|#[0-9a-fA-F]{{6}}|none|currentColor|inherit|transparent|[a-z]{{3,20}}|url\(#[^)"\n]+\)|rgb\([0-9., %]*\)/
PATH: {_path_data()}
"""


SVG = _svg()

BUILTINS = {
    "abc": Builtin(ABC, _first(r"^X:"), "a tune in ABC notation (X:, M:, L:, K: header; bars of notes)"),
    "abc-metred": Builtin(abc_metred.LARK, _first(r"^X:"),
                          "a tune in ABC notation whose every bar is as long as its metre says (L:1/8; engine/constrain/abc_metred.py)"),
    "level": Builtin(LEVEL, _level_begins, "a Super Mario Bros level, one column of 14 tiles a line"),
    "play": Builtin(PLAY, _first(r"^(#{1,6} |\*\*[A-Z])"), "a play's scene: headings, speakers, speech, directions"),
    "svg": Builtin(SVG, _first(r"<svg"), "a drawing in SVG normal form, one element a line", unique_attributes=True,
                   close_in_time=True),
}
