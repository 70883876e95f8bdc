"""Does the `abc` check's complete-bars verdict agree with abc2midi on real tunes?

Takes a seeded sample of O'Neill's Music of Ireland (music21's corpus, the folk-tunes example's
data), runs abc2midi (Debian's `abcmidi`, the standard ABC-to-MIDI tool) on each tune alone and
reads its bar-length warnings (`Track 0 Bar 8 has 12 time units while the time signature has 6`,
with ` in repeat` on the repeated pass); a tune is clean when it has none. Beside it, the check's
`complete_bars` for the same text. Reports the clean rate, the check's rate, the agreement (share
of tunes where both say the same) and the confusion table, against abc2midi as it is run by default
and with `-NFER` (by default abc2midi plays a fermata `H` at double length and then counts it so in
the bar; `-NFER` judges the bar as written, as the check does); `--show` lists the disagreements
with `-NFER`, with the check's own reasons. Goal (issue 26): agreement of 0.9 or more, and the
check's rate near abc2midi's clean rate. The check is never stricter than abc2midi on this corpus;
where it is more lenient, abc2midi misreads: `:||` (it judges the bar carried over the repeat again
at the second `|`), a later part's endings (it counts endings over the whole tune and replays an
earlier part a third time), and a few ornaments beside broken rhythm (`{B}(~A>G)`).
Run: .venv/bin/python bench/abc_check_agreement.py [-n 200] [--seed 0] [--show 10]
"""
from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.checks import abc_bars, abc_notation
from engine.corpora import abc_tunes

BAR_WARNING = re.compile(r"Bar (\d+) has ([\d/]+) time units while the time signature has (\d+)( in repeat)?")


def abc2midi_bar_warnings(text: str, folder: Path, *flags: str) -> list[str]:
    """abc2midi's bar-length warnings for one tune (its errors about ties or ornaments aside)."""
    path = folder / "tune.abc"
    path.write_text(text + "\n", encoding="utf-8")
    done = subprocess.run(["abc2midi", str(path), "-o", "/dev/null", *flags], capture_output=True, text=True,
                          timeout=60, check=False)
    return [m.group(0) for m in BAR_WARNING.finditer(done.stdout + done.stderr)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="tunes to sample (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=0, help="list this many disagreements")
    args = parser.parse_args()
    if shutil.which("abc2midi") is None:
        sys.exit("abc2midi not found: as root, run: apt-get install abcmidi")
    tunes = [t for path in abc_tunes.files({"collections": ["oneills1850"]}) for t in abc_tunes.tunes(path)]
    sample = random.Random(args.seed).sample(tunes, min(args.n, len(tunes)))
    rows = []
    check_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for tune in sample:
            default = abc2midi_bar_warnings(tune["text"], Path(tmp))
            as_written = abc2midi_bar_warnings(tune["text"], Path(tmp), "-NFER")
            start = time.perf_counter()
            complete = abc_notation.check_tune(tune["text"])["complete_bars"]
            check_s += time.perf_counter() - start
            rows.append((tune, not default, not as_written, complete, as_written))
    n = len(rows)
    print(f"O'Neill's tunes: {n} of {len(tunes)} (seed {args.seed}); abc check version {abc_notation.VERSION}; "
          f"check {check_s / n * 1000:.0f} ms a tune; check complete-bars rate {sum(r[3] for r in rows) / n:.3f}")
    for column, name in ((1, "abc2midi"), (2, "abc2midi -NFER")):
        count = lambda clean, complete: sum(r[column] == clean and r[3] == complete for r in rows)  # noqa: E731
        print(f"\n{name}: clean rate {sum(r[column] for r in rows) / n:.3f}; "
              f"agreement {sum(r[column] == r[3] for r in rows) / n:.3f}")
        print(f"  {'':<22}check complete   check incomplete")
        print(f"  {name + ' clean':<22}{count(True, True):>14}   {count(True, False):>16}")
        print(f"  {name + ' warns':<22}{count(False, True):>14}   {count(False, False):>16}")
    for tune, _, clean, complete, warnings in [r for r in rows if r[2] != r[3]][:args.show]:
        print(f"\n--- X:{tune['number']} {tune['title']} ({tune['file']}): abc2midi -NFER {'clean' if clean else 'warns'}, "
              f"check {'complete' if complete else 'incomplete'}")
        for line in warnings + list(abc_bars.judge(tune["text"]).problems):
            print("  " + line)
        print(tune["music"])


if __name__ == "__main__":
    main()
