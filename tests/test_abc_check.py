"""The `abc` check's complete bars, on real tunes that must pass and broken ones that must fail.

The real tunes are from O'Neill's Music of Ireland (1850; public domain), as music21's corpus has
them; abc2midi (`abc2midi FILE -o /dev/null -NFER`) reports no bar-length warning for any of them.
The agreement on the whole collection is measured by bench/abc_check_agreement.py, not here.
"""
from __future__ import annotations

from fractions import Fraction

import pytest

from engine.checks import abc_bars, abc_notation, abc_reading

REAL_TUNES = {
    # a pickup before |:, first and second endings, section pickups after ||, a :| with no |:
    "crabs in the skillet": """X: 1112
T: Crabs in the Skillet
M:6/8
L:1/8
K:Gm
D|:G3 d2^F|(G2A) (B2c)|ded cBA|dcB AG^F|
G3 d2^F|(G2A) (B2d)|cAc f=ed|1 cAF F=EF:|2 cAF G2||
d|gag gf=e|fgf f=ed|cd=e fed|cAF G2d|
gag gf=e|fgf f=ed|cd=e fed|1 cAF F2:|2 cAF F=EF||
G2z A2z|B2z c2z|ded cBA|dcB AG^F|
G2z A2z|B2z d2z|cAc f=ed|1 cAF F=EF:|2 cAF G2||""",
    # a tuplet pickup before |:, grace notes inside a tuplet, chord-symbol text, endings
    "the lady behind the boat": """X: 1386
T: The Lady Behind The Boat
M:C|
L:1/8
K:D
((3AB"   Sign"c) |: d2 cA BGGE | DEFD EA, ((3{B,}A,G,A,) | DFAc dfed |1 ((3cBA) Bc dfed :|2 ((3cBA) Bc d2||
((3ABc)|  d2 dc dfed | c2 cB cedc | d2 dc dfed | ecAc (TBA)(Bc)|
          dfaf  gfed | Beef  ecAc | defd  cdec | BABc dfe"   Sign"c |]""",
    # broken rhythm, tuplets, line continuations, a pickup after |: completing the bar before :|
    "the little stack of barley": """X: 1627
T: The Little Stack of Barley
M:C|
L:1/8
K:G
B>d \\
| e>fed BedB | AGEG AcBA | GFGA BA (3Bcd | e2A2A2 B>d |
| efgf efdB | AGEG AcBA | G>FGA BdAB | G2GG G2 :|
|: GA \\
| Bdef g2fg | agfg eg d2 | gfed B>A (3Bcd | e2 AA A2 Bd |
| (3efg a f g2 fe | d>BAG AcBA | G>FGA BdAB | G2 GG G2 :|""",
    # the short bar before :| completed by the pickup of the repeat, twice
    "come to the bottle house": """X: 1377
T: Come To The Bottle House
M:C|
L:1/8
K:A
(ed) | cBAc BAFE | FBBA B2 (ed) | cBAc BAFE | EdcB A2 :|
|: ((3efg) | a2 ge ((3fga) ec | B2 {c}BA BdcB | A2 ae ((3fga) ec | dfec A2 :|""",
    # halved notes written /2, a tuplet in a slur, G4 || GA | across a section line
    "the groves of dromore": """X: 358
T: The Groves of Dromore
M:3/4
L:1/8
K:G
d>c | B2 d2 cA | G2 AG FD/2E/2 | F2 G2 GA | B2 c2de |
=f2 d2 B2 | c4 dc | B2 d2 cA | G2 AG FD/2e/2 |
F2 G2 GA | B2 d2 ((3cAG) | A2 G2 G2 | G4 ||
GA | B2 c2 de | =f2 gf ec | d3 cBG | B2 c2 de |
=f3 dcB | c4 dc | B2 d2 cA | G2 AG FD/2E/2 |
F2 G2 GA | B2 d2 ((3cAG) | A2 G2 G2 | G4 ||""",
    # inline [L:1/16] and [L:1/8], a % line, grace notes, broken rhythm on halved notes
    "the irish hautboy": """X: 570
T: Irish Hautboy., The
M:C
L:1/8
%Q:60
K:G
({A}G>E)|(D>E)GA B2 (GA/B/)|(c2 B)A B>G E2|(DE)GA B2 dB|(A>B){B}AG G2:|
d2|(g>f){f}ed (ef)ge|(dc)BA {A}GEED|g>fed "~"efge|dBAG {A}G2 ({G}FE)|
(D>E)GA B2 (GA/>B/)|[L:1/16] (c3d/c/)[L:1/8] BA BG {F}E2|\\
D>EGA B2 dB|(A>B){B}AG G2||""",
    # chords [g2B2], accents in quotes, rests, lines that start with a bar line
    "young william plunkett": """X: 650
T: Young William Plunkett
M:C
L:1/8
K:G
D \\
| ">"G2GG [g2B2]gf | (ef)(ed) B2(Bd) | (ef)(ge) ({f}ed)(cB) | (AB)(AG) E2Ez |
| (GA)(BG) g2gf | (ef)(ed) B2cB | (A/B/c) BA B2AB | GEDE G2Gz |
| ">"G2(AB) ">"G2(AB) | {^c}d2de (dB)(AG) | G2GG [g2B2]gf | (ef)(ed) B2z2 |
| {c}BABd {f}edef | ">"(gf)(gd) ">"BABd | ">"efge dBAB | GEDE G2z |]""",
    # endings with no |: (the repeat is from the start), a decoration ~, text "D.C."
    "the ships are sailing": """X: 1264
T: The Ships are Sailing
M:C|
L:1/8
K:Em
Beed B^cdB | AD (3FED AD (3FED | E^DEF GFGA |1 Beef gfed :|2 Bee^de2 ||
(ef) | gfga bgeg | fefg afdf | gfga bgeg | fe^dfe2(ef) |
gfga bgeg | fefg afdf | g2~(ge)f2~(fd) | e^def "D.C."gfed |]""",
}
CRABS = REAL_TUNES["crabs in the skillet"]
BOTTLE = REAL_TUNES["come to the bottle house"]


@pytest.mark.parametrize("name", sorted(REAL_TUNES))
def test_real_tunes_have_complete_bars(name):
    result = abc_notation.check_tune(REAL_TUNES[name])
    assert result["parses"] and result["complete_bars"], abc_bars.judge(REAL_TUNES[name]).problems


@pytest.mark.parametrize("broken, problems", [
    # one eighth short in the middle of the first part: "ded cBA" -> "ded cB"
    (CRABS.replace("|ded cBA|dcB AG^F|\nG3", "|ded cB|dcB AG^F|\nG3"),
     ("6:30  a bar of 5/8 (whole notes) where the metre has 3/4",
      "6:30  a bar of 5/8 (whole notes) where the metre has 3/4, on the repeat")),
    # an extra note in the second part
    (CRABS.replace("d|gag gf=e|", "d|gag gf=ef|"),
     ("8:12  a bar of 7/8 (whole notes) where the metre has 3/4",
      "8:12  a bar of 7/8 (whole notes) where the metre has 3/4, on the repeat")),
    # a second ending one eighth short: with the next part's pickup d it still misses an eighth
    (CRABS.replace(":|2 cAF G2||\nd|", ":|2 cAF G||\nd|"), ("8:2  a bar of 5/8 (whole notes) where the metre has 3/4",)),
    # the pickup of the repeat no longer completes the bar before :| ("((3efg)" -> "e"): wrong after
    # the first part and on the way back from the second
    (BOTTLE.replace("A2 :|\n|: ((3efg)", "A2 :|\n|: e"),
     ("7:6  a bar of 7/8 (whole notes) where the metre has 1",
      "7:6  a bar of 7/8 (whole notes) where the metre has 1, on the repeat")),
    # a short last bar closed by a plain bar line (no pickup at the start to complete it)
    ("X:1\nT:t\nM:4/4\nL:1/8\nK:G\nGABc dedB|dedB dedB|c2ec B2dB|c2A2 A2|\n",
     ("6:38  a bar of 3/4 (whole notes) where the metre has 1",)),
])
def test_broken_tunes_fail_where_they_are_broken(broken, problems):
    assert abc_bars.judge(broken).problems == problems
    assert abc_notation.check_tune(broken)["parses"] and not abc_notation.check_tune(broken)["complete_bars"]


def test_a_wrong_metre_fails_every_bar():
    jig_as_reel = CRABS.replace("M:6/8", "M:C")
    judged = abc_bars.judge(jig_as_reel)
    assert not abc_notation.check_tune(jig_as_reel)["complete_bars"]
    assert judged.problems[0] == "6:11  a bar of 3/4 (whole notes) where the metre has 1"
    assert not abc_bars.judge(CRABS.replace("M:6/8", "M:9/8")).complete


def bar_lengths(body: str, metre: str = "4/4", unit: str = "1/8") -> list[Fraction]:
    """The length of each written bar of a one-voice body, in whole notes."""
    events = abc_reading.read(f"X:1\nM:{metre}\nL:{unit}\nK:C\n{body}\n")[""]
    lengths, length = [], Fraction(0)
    for event in events:
        if event.kind == "note":
            length += event.value
        elif event.kind == "bar":
            lengths.append(length)
            length = Fraction(0)
    return lengths + [length] if length else lengths


@pytest.mark.parametrize("body, lengths", [
    ("GABc dedB|", [1]),
    ("(3GAB c2 d4|(3:2:4G2AB2c d4|", [1, 1]),  # (3 is 3 in the time of 2; (3:2:4 for 4 notes
    ("(5GABcd c2 d4|", [1]),  # 5 in the time of 2 in a simple metre
    ("G>A B<c d>>e f<<g|G2>A B4 c|", [1, 1]),  # broken rhythm moves time between equal notes only
    ("[ceg]2 [c2e2] [CEG]4|[G3B]ABc d|", [1, Fraction(7, 8)]),  # a chord lasts as long as its first note
    ('{ag}GABc {/a}d!trill!e~dTB|"Am"GABc "^text"dedB|', [1, 1]),  # grace notes, decorations, text
    ("[L:1/16]GGAABBcc d2e2d2B2|[L:1/8]x4 z2 G/A/B|", [1, 1]),  # inline unit lengths, rests
    ("G/A/B/c/ d//e//d//B// c3/ B/ A2|", [Fraction(7, 8)]),
    ("GABc % a comment | not a bar\ndedB|GABc \\\ndedB|", [1, 1]),  # comments, line continuations
    ("Z|Z2|", [1, 1, 1]),  # whole bars of rest
    ("GABc dedB|\nw: lyr-ics | with | bars\nGABc dedB|", [1, 1]),  # lyrics lines take no time
])
def test_bar_lengths(body, lengths):
    assert bar_lengths(body) == lengths


def test_tuplets_of_five_in_a_compound_metre_take_three():
    assert bar_lengths("(5GABcd d2 e|", metre="6/8") == [Fraction(3, 4)]


@pytest.mark.parametrize("body, problems", [
    # the pickup is outside the repeat: the repeat returns to |:, and A3 A2 + G2B dBG is too long
    ("D|:G2B dBG|A2B c2A|G2B dBG|A3 A2:|", ["6:11  a bar of 11/8 (whole notes) where the metre has 3/4, on the repeat"]),
    ("D|:G2B dBG|A2B c2A|G2B dBG|A3 A2D:|", []),  # the pickup written again before :|
    ("|:D|G2B dBG|A2B c2A|G2B dBG|A3 A2:|", []),  # the pickup inside the repeat
    ("D|G2B dBG|A2B c2A|G2B dBG|A3 A2:|", []),  # no |: : the repeat is from the start, pickup and all
    ("D|:G2B dBG|A2B c2A|1 G2B dBG:|2 A3 A2||", []),
    ("D|:G2B dBG|A2B c2A|1 G2B dB:|2 A3 A2||", ["6:11  a bar of 11/8 (whole notes) where the metre has 3/4, on the repeat"]),
    ("D|G2B dBG|A3 A2||d|g2b d2B|g2b d2B|", []),  # a section's pickup completes the bar before ||
    ("D|G2B dBG|A3 A2||dc|g2b d2B|", ["6:20  a bar of 7/8 (whole notes) where the metre has 3/4"]),
    ("D|G2B dBG|A3 A2::d|g2b d2B|g3 g2:|", []),  # :: ends one repeat and starts the next
    ("D|G2B dBG|A3 A2:|:d|g2b d2B|g3 g2:||", []),  # :|: is ::, and :|| ends a repeat like :|
    ("G2B dBG|A2B c2A|G2B dBG|A3 A2", []),  # a last bar with no bar line after it is not judged
    ("G2B dBG|A2B c2A|G2B dBG|A3 A2|]", []),  # nor one closed by |] (abc2midi's reading too)
    ("G3B dBG|A2B c2A|", ["6:8  a bar of 7/8 (whole notes) where the metre has 3/4"]),  # a first bar too long
])
def test_repeats_endings_and_pickups(body, problems):
    assert list(abc_bars.judge(f"X:1\nT:t\nM:6/8\nL:1/8\nK:G\n{body}\n").problems) == problems


def test_metres():
    assert [abc_reading.metre_length(m) for m in ("6/8", "C", "C|", "2+3/8", "none")] == [
        Fraction(3, 4), 1, 1, Fraction(5, 8), None]
    assert abc_bars.judge("X:1\nM:none\nL:1/8\nK:G\nGAB|cdefg|a|\n").complete  # free metre: not judged
    assert not abc_bars.judge("X:1\nM:2/4\nK:G\nGABc|GABc|GABc|\n").complete  # no L: in 2/4 is 1/16: short bars


def test_only_the_first_tune_and_its_voices_are_judged():
    tune = "X:1\nM:3/4\nL:1/8\nK:G\nV:1\nGAB cde|GAB cde|GAB cde|\nV:2\nG6|G6|G6|\n"
    assert abc_bars.judge(tune).complete
    assert not abc_bars.judge(tune.replace("G6|G6|", "G6|G5|")).complete
    assert abc_bars.judge(tune + "X:2\nM:3/4\nL:1/8\nK:G\nGA|B|c|\n").complete
