"""Whether each bar of an ABC tune is as long as its metre says, judged as abc2midi (Debian's
`abcmidi`) judges it while it plays the tune, from the events `abc_reading` reads.

Why not music21's measures: music21 cuts a bar in two at a repeat sign or an ending, so the short
bar before `:|` and the pickup after `|:` become two short measures, each judged wrong.

    D |: G2B dBG | ... |1 A3 A2 :|2 A3 A2 || d | ...
    ^ pickup       played: pass 1 with ending 1, back to |:, pass 2 with ending 2

- a bar closed by `|` is complete when its length is the metre's (M:C is 4/4, M:C| 2/2; no M:
  is 4/4; M:none is not judged); only the first bar may be short (a pickup);
- a short bar closed by `||`, `|]`, `[|`, `|:`, `:|` or `::` is not judged there: it is carried
  on and completed by what is played next (the pickup of the next part, or, at `:|`, the start
  of the repeated part), so the two parts of a bar split by a repeat or a part line make one bar;
- `|:` ... `:|` is played twice; `|1`/`[1` ... and `:|2`/`[2` ... are the endings of pass 1 and 2
  (`[1,3`, `[1-2` lists too); a `:|` with no `|:` repeats from the last `||` or `:|` or the start;
- a bar with no bar line after it (the end of the text) is not judged, nor is a short last bar
  closed by `||` or `|]`.

Where abc2midi's reading is a quirk rather than notation, this follows the notation: `:||` ends a
repeat (abc2midi reads `:|` then an empty `|` and judges the carried bar again), a fermata does
not lengthen its note (abc2midi's `-NFER`), a first bar longer than the metre is wrong, and a
later part's endings are repeats of their own (see `fix_repeats`).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from engine.checks.abc_reading import Event, read

SKIP_TO = {"section", "start", "end", "ending"}  # where a skipped ending stops (abc2midi's list)


@dataclass(frozen=True)
class Judgement:
    bars: int  # written bars holding notes, in the voice with fewest
    problems: tuple[str, ...]  # one line per wrong bar, with where it ends

    @property
    def complete(self) -> bool:
        return self.bars >= 3 and not self.problems


def fix_repeats(events: list[Event]) -> list[Event]:
    """abc2midi's `fixreps`: a `:|`, `::` or first ending with no `|:` before it repeats from
    the last `||` or `:|` (or the start), which becomes a `|:` (or a `::`). Unlike abc2midi, the
    endings seen are counted per part (from a `||` or `|:`): abc2midi counts them over the tune, so
    a later part with endings and no `|:` is not repeated and its first ending never played."""
    events = [Event("bar", "section")] + events  # abc2midi puts a || before the music
    expect, point, endings = False, 0, 0

    def place_start(j: int) -> None:
        kind = events[j].value
        if kind in ("section", "single", "end"):
            events[j] = Event("bar", "both" if kind == "end" else "start", events[j].where)

    for j, event in enumerate(events):
        kind = _kind(event)
        if kind == "section":
            point, endings = j, 0
        elif kind == "start":
            if expect:
                events[j] = Event("bar", "both", event.where)
            expect, endings = True, 0
        elif kind == "end":
            if not expect and endings < 1:
                place_start(point)
            expect, point = False, j
        elif kind == "ending":
            if endings == 0 and not expect:
                place_start(point)
            endings += 1
        elif kind == "both":
            if not expect:
                place_start(point)
            expect = True
    return events


def play(events: list[Event]) -> list[str]:
    """The wrong bars met while playing the events in order, repeats and endings taken."""
    events = fix_repeats(events)
    problems: list[str] = []
    length, barno, bar, pass_, maxpass, expect = Fraction(0), 0, None, 1, 2, False
    saved = (0, 0)
    j = 0

    def close(where: str, soft: bool) -> None:
        nonlocal length, barno
        if bar is not None and soft and length < bar and barno > 0:
            return  # not judged here: a short bar before a section or repeat sign carries on
        pickup = barno == 0 and pass_ != 2 and bar is not None and length < bar
        if bar is not None and length and length != bar and not pickup:
            problems.append(f"{where}  a bar of {length} (whole notes) where the metre has {bar}"
                            + (", on the repeat" if pass_ > 1 else ""))
        barno += 1 if length else 0
        length = Fraction(0)

    while j < len(events):
        event = events[j]
        if event.kind == "note":
            length += event.value
        elif event.kind == "metre":
            bar = event.value
        elif event.kind == "ending":
            if (pass_ if expect or pass_ > 1 else 1) not in event.value:
                j += 1  # not this pass's ending: skip to the end of it
                while j < len(events) and _kind(events[j]) not in SKIP_TO:
                    j += 1
                barno += 1
            elif maxpass < 4:
                maxpass = pass_ + 1
        elif event.value == "single":
            close(event.where, soft=False)
        else:
            close(event.where, soft=True)
            kind = event.value
            if kind == "start" or (kind == "both" and (pass_ > 1 or not expect)):
                saved, expect, pass_, maxpass = (j, barno), True, 1, 2
            elif kind == "end" and ((pass_ == 1 and expect) or 1 < pass_ < maxpass):
                (j, barno), expect, pass_ = saved, False, pass_ + 1
            elif kind == "both" and expect:
                (j, barno), pass_ = saved, pass_ + 1
        j += 1
    return problems


def judge(text: str) -> Judgement:
    """Whether each bar of the first tune in `text` is as long as its metre says, and why not."""
    voices = read(text)
    if not voices:
        return Judgement(0, ())
    bars = min(_written_bars(events) for events in voices.values())
    return Judgement(bars, tuple(p for events in voices.values() for p in play(events)))


def _kind(event: Event) -> str:
    return event.value if event.kind == "bar" else event.kind


def _written_bars(events: list[Event]) -> int:
    count, filled = 0, False
    for event in events:
        if event.kind == "note":
            filled = True
        elif event.kind == "bar" and filled:
            count, filled = count + 1, False
    return count + filled
