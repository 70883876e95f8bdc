"""abc: is each sample a usable tune in ABC notation?

Per sample (the prompt and its completion from the first `X:` line on: a tune starts in the
prompt, or after an instruction that is not ABC):
  parses         music21's ABC parser reads it into a score with at least one note
  has_headers    it has the X:, M:, L: and K: header fields
  complete_bars  it parses, has at least 3 bars, and every bar is as long as the metre says,
                 read as abc2midi plays the tune: a pickup at the start, and the two parts of a bar
                 split by a section or repeat sign or an ending make one bar (`abc_bars`)
  bar_accuracy   the share of its bars that are right (1 - wrong bars / written bars, a bar in a
                 repeat counted once; 0 when it
                 does not parse): a graded signal where few tunes are complete, for
                 `generate.select` and the pairs of preference training
and the pitch-class entropy (bits, of 12 classes) of the samples against that of 60 training
tunes drawn with a fixed seed. With record prompts (instruction data: `generate.prompts` as
`{meter: 6/8, key: G, ...}`), `abc_follows_rate` is the share of samples whose M: and K: headers
are the metre and key the prompt asked for. With the training texts at hand, each parsed tune's
`similarity` to the nearest training tune by its notes (abc_novelty.py): `abc_novel_valid_rate`
is the share that parse, have at least 8 notes and are not near-copies, `abc_nearest_similarity`
the mean similarity of those that parse and have 8 notes (a shorter tune's is None; 0.0 when no
sample has 8 notes, which says nothing was compared, not that the samples are new).
"""
from __future__ import annotations

VERSION = 10  # (2: several tunes judged by the first; 3: 3+ bars, 60 reference tunes; 4: tunes split at end-of-text;
# 5: the tune starts at the first X: line, follows_rate for record prompts; 6: bars judged by abc_bars, as abc2midi
# plays them, not by music21's measures; 7: novel_valid, nearest similarity; 8: bar_accuracy; 9: a repeated bar
# counted once; 10: a tune of fewer than 8 notes is not novel) bump when the same samples would get other results

import math
import random
import re
from functools import lru_cache

from engine.checks import abc_bars, abc_novelty

METRICS = ("abc_parse_rate", "abc_header_rate", "abc_complete_bars_rate", "abc_pitch_entropy",
           "abc_corpus_pitch_entropy", "abc_follows_rate", "abc_novel_valid_rate", "abc_nearest_similarity",
           "abc_bar_accuracy")  # what run reports (generate.select.by may name one)
REQUIRED = ("X", "M", "L", "K")
REFERENCE_TUNES = 60  # parsing costs ~0.3 s a tune; 60 tunes give a few thousand notes


def headers(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"(?m)^([A-Z]):", text)}


def parse(text: str):
    """A music21 score, or None when the text is not valid ABC (or has no notes)."""
    import warnings

    from music21 import converter

    from music21 import stream

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parse(text, format="abc", forceSource=True)
            if isinstance(score, stream.Opus):  # the text holds several tunes: judge the first
                score = score.scores[0] if score.scores else None
            return score if score is not None and len(score.flatten().notes) else None
    except Exception:  # noqa: BLE001 - any parser failure means "does not parse"
        return None


def pitch_classes(score) -> list[int]:
    return [p.pitchClass for p in score.flatten().pitches]


def entropy(classes: list[int]) -> float:
    if not classes:
        return 0.0
    counts = [classes.count(c) for c in range(12)]
    total = len(classes)
    return -sum(c / total * math.log2(c / total) for c in counts if c)


def check_tune(text: str) -> dict:
    """Results for one text (used by the tests on hand-made tunes)."""
    score = parse(text)
    bars = abc_bars.judge(text) if score is not None else None
    return {"parses": score is not None, "has_headers": set(REQUIRED) <= headers(text),
            "complete_bars": bars is not None and bars.complete,
            "bar_accuracy": bar_accuracy(bars) if bars else 0.0,
            "pitch_classes": pitch_classes(score) if score is not None else []}


def bar_accuracy(bars: abc_bars.Judgement) -> float:
    """The share of written bars that are right: a bar played twice (a repeat) is one bar, wrong
    once however often it is played (problems name where the bar ends)."""
    if not bars.bars:
        return 0.0
    wrong = len({problem.split("  ", 1)[0] for problem in bars.problems})
    return round(max(0.0, 1 - wrong / bars.bars), 4)


def tune_text(text: str) -> str:
    """The text from its first `X:` line on (all of it when it has none)."""
    start = re.search(r"(?m)^X:", text)
    return text[start.start():] if start else text


def header_values(text: str) -> dict[str, str]:
    """The first value of each header field, spaces removed: {"M": "6/8", "K": "G"}."""
    out: dict[str, str] = {}
    for match in re.finditer(r"(?m)^([A-Z]):(.*)$", text):
        out.setdefault(match.group(1), match.group(2).replace(" ", ""))
    return out


def follows(text: str, asked: dict) -> bool:
    """Whether the tune's M: and K: are the metre and key a record prompt asked for."""
    found = header_values(text)
    return all(found.get(field) == str(asked[name]).replace(" ", "")
               for field, name in (("M", "meter"), ("K", "key")) if name in asked)


@lru_cache(maxsize=4)
def corpus_entropy(training_texts: tuple[str, ...]) -> float:
    """The pitch-class entropy of 60 training tunes drawn with a fixed seed; parsing them takes
    about 18 s, so it is done once per training set (`generate.select` scores one sample at a time)."""
    tunes = [t.strip() for text in training_texts for t in re.split(r"(?m)^(?=X:)", text.strip()) if t.startswith("X:")]
    reference = random.Random(0).sample(tunes, min(REFERENCE_TUNES, len(tunes)))
    return entropy([c for t in reference for c in check_tune(t)["pitch_classes"]])


def run(samples: list[dict], context) -> dict:
    texts = [tune_text(s["prompt"] + s["completion"]) for s in samples]
    results = [check_tune(text) for text in texts]
    asked = [s.get("fields") or {} for s in samples]
    for sample, text, result, fields in zip(samples, texts, results, asked):
        sample["abc"] = {k: v for k, v in result.items() if k != "pitch_classes"}
        if {"meter", "key"} & set(fields):
            sample["abc"]["follows"] = follows(text, fields)
    tunes = training_tunes(context)
    for sample, text, result in zip(samples, texts, results):
        similarity = None
        if result["parses"]:
            similarity = tunes.similarity(text)
            sample["abc"]["similarity"] = None if similarity is None else round(similarity, 4)
        result["novel_valid"] = similarity is not None and similarity < abc_novelty.COPY_SIMILARITY
        sample["abc"]["novel_valid"] = result["novel_valid"]
    share = lambda key: sum(r[key] for r in results) / len(results) if results else 0.0  # noqa: E731
    similar = [s["abc"]["similarity"] for s in samples if s["abc"].get("similarity") is not None]
    return {"abc_parse_rate": share("parses"), "abc_header_rate": share("has_headers"),
            "abc_complete_bars_rate": share("complete_bars"), "abc_bar_accuracy": round(share("bar_accuracy"), 4),
            "abc_novel_valid_rate": share("novel_valid"),
            "abc_nearest_similarity": round(sum(similar) / len(similar), 4) if similar else 0.0,
            "abc_pitch_entropy": entropy([c for r in results for c in r["pitch_classes"]]),
            "abc_corpus_pitch_entropy": corpus_entropy(tuple(context.training_texts())),
            **({"abc_follows_rate": sum(s["abc"]["follows"] for s in judged) / len(judged)}
               if (judged := [s for s in samples if "follows" in s["abc"]]) else {})}


def training_tunes(context) -> abc_novelty.Tunes:
    """The training tunes (each from its X: line) as an abc_novelty.Tunes, built once per context."""
    def build():
        texts = context.training_texts()
        return abc_novelty.Tunes([t for text in texts for t in re.split(r"(?m)^(?=X:)", text) if t.startswith("X:")])

    return context.derived("abc tunes", build)
