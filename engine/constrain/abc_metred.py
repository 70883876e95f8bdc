"""`constrain: abc-metred`: ABC whose every bar is as long as its metre says, by construction.

The `abc` grammar takes any bar; a small model writes bars of any length (tune-instructions:
0 of 12 candidates with every bar right). This grammar counts: with `L:1/8`, each bar is a
sequence of notes, rests, broken-rhythm pairs (`A>B`) and triplets (`(3ABC`) whose lengths in
eighths sum to the metre's (M:2/4 4, 3/4 6, 4/4 and C and C| and 2/2 8, 3/8 3, 6/8 6, 9/8 9,
12/8 12). Lengths are whole eighths (1, 2, 3, 4, 6, 8); a pair or a triplet is 2. A chord name in
quotes, a `~` and slurs may go with a note and take no time. Every line of music ends with a bar
line, so no bar runs from one line into the next; no pickup, no endings. A tune may end after one bar:
the check's `complete_bars` wants three, so a tune cut short is still not complete. The header is X:, then
any fields, M:, L:1/8 and K: in that order (fields may sit between them).

What it does not make: music. The bars add up; whether the tune is a good one is the listener's
call (and the `abc` check's other numbers: pitch entropy, novelty).
"""
from __future__ import annotations

import re

METRES = {"2/4": 4, "3/4": 6, "4/4": 8, "C": 8, "C|": 8, "2/2": 8, "3/8": 3, "6/8": 6, "9/8": 9, "12/8": 12}
LENGTHS = {1: "", 2: "2", 3: "3", 4: "4", 6: "6", 8: "8"}  # eighths -> the length suffix


def lark() -> str:
    units = sorted(set(METRES.values()))
    rules = [f"start: X_FIELD other* ({' | '.join(f'tune{unit}' for unit in units)}) END?", "other: FIELD | COMMENT"]
    for unit in units:  # a tune in each metre: its header's M:, then lines of bars of `unit` eighths
        pattern = "|".join(re.escape(name).replace("/", "\\/") for name, value in METRES.items() if value == unit)
        rules += [f"tune{unit}: M{unit} other* L8 other* K_FIELD line{unit}+",
                  f"line{unit}: LEAD? n{unit} (SEP n{unit})* EOL",
                  f"M{unit}: /M:[ \\t]*({pattern})[ \\t]*\\n/"]
    for total in range(1, max(units) + 1):  # n<k>: notes that add up to k eighths
        rules.append(f"n{total}: " + " | ".join(f"T{v}" + (f" n{total - v}" if total > v else "")
                                                for v in LENGTHS if v <= total))
    for value, suffix in LENGTHS.items():  # T<v>: one note (or pair, or triplet) worth v eighths
        one = f'(NOTE | REST){f" {chr(34)}{suffix}{chr(34)}" if suffix else ""}'
        if value == 2:
            one = f'({one} | NOTE /[<>]/ NOTE | "(3" NOTE NOTE NOTE)'
        rules.append(f'T{value}: /[ ]?/ DECOR? {one} ")"?')
    return "\n".join(rules) + TERMINALS


TERMINALS = r"""
X_FIELD: /X:[ \t]*[0-9]{1,6}[ \t]*\n/
L8: /L:[ \t]*1\/8[ \t]*\n/
K_FIELD: /K:[ \t]*[A-G][#b]?[ \t]*[A-Za-z]{0,10}[ \t]*\n/
FIELD: /[A-JN-WYZ]:[^\n]{0,200}\n/
COMMENT: /%[^\n]{0,200}\n/
NOTE: /(\^|_|=)?[A-Ga-g][,']*/
REST: "z"
DECOR: /("[A-G][#b]?(m|7|m7|maj7|dim)?" ?)?~?\(?/
LEAD: /(\|:|\|)[ ]?/
SEP: /[ ]?(\||\|\||\|:|:\||::)[ ]?/
EOL: /[ ]?(\||\|\]|\|\||:\|)[ ]?\n/
END: "\n"
"""


LARK = lark()
