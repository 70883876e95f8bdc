"""Reads the body of an ABC tune into timed events: notes and rests with their lengths (exact
fractions of a whole note), bar lines by kind, variant endings, metre changes; one list a voice.

music21's tokens are not used for this: they leave tuplets and inline `[L:]` unapplied and drop
`x` rests. Grace notes, chord symbols, decorations (`!trill!`, `+x+`, `~ . T H`...), `%` comments
and lyrics lines take no time; a chord lasts as long as its first note (times its own length);
broken rhythm (`>`, `<`, `>>`) moves time between two equal notes, as abc2midi does (so it never
changes a bar); tuplets `(p:q:r` follow the standard (q from p, and from the metre for 5, 7, 9);
`Z`/`X` are whole bars of rest. Bar lines are read as abc2midi's parser reads them, except that
`:|:` and `:||:` are `::`, and `:||` ends a repeat like `:|]` (abc2midi reads `:|`, then `|`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

FIELD = re.compile(r"^([A-Za-z+]):(.*)$")
ENDING = re.compile(r"\d+(?:[-,]\d+)*")
TUPLET = re.compile(r"\((\d+)(?::(\d*)(?::(\d*))?)?")  # (p:q:r
LENGTH = re.compile(r"(\d*)((?:/+\d*)*)")
NOTE = re.compile(r"(?:\^\^|__|\^|_|=)?([A-Ga-gzxZX])[',]*(\d*)((?:/+\d*)*)")


@dataclass(frozen=True)
class Event:
    kind: str  # note | bar | ending | metre
    value: object  # length (Fraction), bar kind, passes (frozenset), bar length (Fraction | None)
    where: str = ""  # "line:column" of a bar line in the text


def metre_length(value: str) -> Fraction | None:
    """A bar's length in whole notes: `6/8` 3/4, `C` 1, `C|` 1, `2+3/8` 5/8; `none` None."""
    value = value.split("%")[0].strip()
    if value in ("C", "C|", ""):
        return Fraction(1)
    match = re.match(r"\(?([\d+]+)\)?\s*/\s*(\d+)", value)
    if not match or not all(match.group(1).split("+")) or int(match.group(2)) == 0:
        return None
    return Fraction(sum(int(n) for n in match.group(1).split("+")), int(match.group(2)))


def compound(value: str) -> bool:
    """6/8, 9/8, 12/8...: tuplets of 5, 7 and 9 then take the time of 3 (else of 2)."""
    match = re.match(r"\s*(\d+)\s*/", value)
    return bool(match) and int(match.group(1)) % 3 == 0 and int(match.group(1)) > 3


def note_length(digits: str, slashes: str) -> Fraction:
    length = Fraction(int(digits) if digits else 1)
    for part in re.findall(r"/(\d*)", slashes):
        length /= int(part) if part else 2
    return length


def passes(text: str) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split(","):
        low, _, high = item.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


class _Reader:
    """Reads the body of one tune into events per voice."""

    def __init__(self, metre: str, unit: str):
        self.bar = metre_length(metre) if metre else Fraction(1)
        self.compound = compound(metre)
        default = Fraction(1, 16) if self.bar is not None and self.bar < Fraction(3, 4) else Fraction(1, 8)
        self.unit = note_length(*LENGTH.match(unit.strip()).groups()) if unit.strip() else default
        self.voices: dict[str, list[Event]] = {"": [Event("metre", self.bar)]}
        self.events = self.voices[""]
        self.tuplet, self.tuplet_notes = Fraction(1), 0  # the time factor, for so many notes more
        self.broken: Fraction | None = None  # factor for the previous note, until the next one
        self.last = -1  # index of the previous note in self.events

    def field(self, name: str, value: str) -> None:
        if name == "M":
            self.bar, self.compound = metre_length(value), compound(value)
            self.events.append(Event("metre", self.bar))
        elif name == "L" and re.match(r"\s*\d+/\d+", value):
            self.unit = note_length(*LENGTH.match(value.strip()).groups())
        elif name == "V":
            voice = value.split()[0] if value.split() else ""
            self.events = self.voices.setdefault(voice, [Event("metre", self.bar)])
            self.last, self.broken = -1, None

    def note(self, length: Fraction) -> None:
        if self.tuplet_notes:
            length *= self.tuplet
            self.tuplet_notes -= 1
        if self.broken is not None and self.last >= 0 and self.events[self.last].value == length:
            self.events[self.last] = Event("note", length * self.broken)  # as abc2midi: equal notes only
            length *= 2 - self.broken
        self.broken, self.last = None, len(self.events)
        self.events.append(Event("note", length))

    def bar_line(self, kind: str, where: str, ending: str = "") -> None:
        self.events.append(Event("bar", kind, where))
        if ending:
            self.events.append(Event("ending", passes(ending), where))

    def line(self, text: str, row: int) -> None:  # noqa: C901 - one branch per ABC symbol
        i, n = 0, len(text)
        while i < n:
            c, where = text[i], f"{row}:{i + 1}"
            if c in '"!+{':  # chord symbol, decoration, grace notes: no time
                close = text.find({"{": "}"}.get(c, c), i + 1)
                i = close + 1 if close > 0 else i + 1
            elif c == "|":
                rest = text[i + 1:]
                if rest.startswith("|:"):
                    self.bar_line("start", where); i += 3
                elif rest[:1] == ":":
                    self.bar_line("start", where); i += 2
                elif rest.startswith(("|", "]")):
                    self.bar_line("section", where); i += 2
                else:
                    ending = ENDING.match(rest)
                    self.bar_line("single", where, ending.group(0) if ending else "")
                    i += 1 + (ending.end() if ending else 0)
            elif c == ":":
                rest = text[i + 1:]
                if rest[:1] == ":":
                    self.bar_line("both", where); i += 2
                elif rest[:1] == "|":
                    ending = ENDING.match(rest[1:])
                    i += 2 + (ending.end() if ending else 0)
                    if not ending and (text[i:i + 2] == "|:" or text[i:i + 1] == ":"):  # :||: and :|: are ::
                        self.bar_line("both", where); i += 2 if text[i] == "|" else 1
                    else:
                        self.bar_line("end", where, ending.group(0) if ending else "")
                        i += 1 if not ending and text[i:i + 1] in ("]", "|") else 0  # :|] and :|| end it too
                else:
                    self.bar_line("section", where); i += 1  # a dotted bar line
            elif c == "[":
                rest = text[i + 1:]
                inline = re.match(r"([A-Za-z]):([^\]]*)\]", rest)
                ending = ENDING.match(rest)
                if rest[:1] == "|":
                    self.bar_line("start" if rest[1:2] == ":" else "section", where)
                    i += 3 if rest[1:2] == ":" else 2
                elif ending:
                    self.events.append(Event("ending", passes(ending.group(0)), where)); i += 1 + ending.end()
                elif inline:
                    self.field(inline.group(1), inline.group(2)); i += 1 + inline.end()
                else:
                    close = text.find("]", i)
                    close = n - 1 if close < 0 else close
                    first = NOTE.search(text, i + 1, close)
                    suffix = LENGTH.match(text, close + 1)
                    if first:
                        self.note(note_length(first.group(2), first.group(3)) * self.unit
                                  * note_length(suffix.group(1), suffix.group(2)))
                    i = suffix.end()
            elif c == "]" and text[i + 1:i + 2] == "|":
                self.bar_line("section", where); i += 2
            elif c == "(" and text[i + 1:i + 2].isdigit():
                match = TUPLET.match(text, i)
                p = int(match.group(1))
                q = int(match.group(2) or 0) or {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}.get(p, 3 if self.compound else 2)
                self.tuplet, self.tuplet_notes = Fraction(q, p), int(match.group(3) or 0) or p
                i = match.end()
            elif c in "<>":
                run = len(re.compile(r"[<>]+").match(text, i).group(0))
                self.broken = (2 - Fraction(1, 2 ** run)) if c == ">" else Fraction(1, 2 ** run)
                i += run
            elif match := NOTE.match(text, i):
                length = note_length(match.group(2), match.group(3))
                if match.group(1) in "ZX":  # whole bars of rest
                    for k in range(int(length) if self.bar else 0):
                        if k:
                            self.bar_line("single", where)
                        self.events.append(Event("note", self.bar))
                else:
                    self.note(length * self.unit)
                i = match.end()
            else:  # spaces, ties, slurs, decorations like ~ . T H, line continuations: no time
                i += 1


def read(text: str) -> dict[str, list[Event]]:
    """The events of each voice of the first tune in the text (its body after the K: line)."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    start = 0
    for start, line in enumerate(lines):  # noqa: B007 - the loop finds where the body starts
        match = FIELD.match(line.strip())
        if match is None and not line.lstrip().startswith("%"):
            break
        if match:
            header.setdefault(match.group(1), match.group(2).strip())
            if match.group(1) == "K":
                start += 1
                break
    else:
        start = len(lines)
    reader = _Reader(header.get("M", ""), header.get("L", ""))
    for row, line in enumerate(lines[start:], start + 1):
        line = re.sub(r"(?<!\\)%.*", "", line)
        match = FIELD.match(line.strip())
        if match and match.group(1) == "X":
            break  # the next tune
        if match:
            reader.field(match.group(1), match.group(2))
        else:
            reader.line(line, row)
    return {voice: events for voice, events in reader.voices.items() if any(e.kind == "note" for e in events)}
