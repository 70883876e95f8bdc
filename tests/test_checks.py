"""Evaluators of generated samples, on hand-made cases with known answers."""
from __future__ import annotations

import pytest

from engine.checks import abc_notation, copying, distinct, levels, play_format

VALID_TUNE = """X:1
T:Known Good Reel
M:4/4
L:1/8
K:G
GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|
GABc dedB|dedB dedB|c2ec B2dB|A2F2 G4|]
"""

BROKEN_TUNE = """X:2
T:Missing key and short bars
M:4/4
L:1/8
GAB|dedB dedB d|c2|G4|]
"""


def test_abc_valid_tune():
    result = abc_notation.check_tune(VALID_TUNE)
    assert result["parses"] and result["has_headers"] and result["complete_bars"]
    assert len(result["pitch_classes"]) == 52  # 27 notes on the first line, 25 on the second


def test_abc_invalid_tune():
    result = abc_notation.check_tune(BROKEN_TUNE)
    assert not result["has_headers"]
    assert not result["complete_bars"]


def test_abc_two_tunes_are_judged_by_the_first():
    result = abc_notation.check_tune(VALID_TUNE + "\n" + VALID_TUNE.replace("X:1", "X:2"))
    assert result["parses"] and result["complete_bars"] and len(result["pitch_classes"]) == 52


def test_abc_too_few_bars_cannot_be_complete():
    result = abc_notation.check_tune("X:3\nT:Short\nM:4/4\nL:1/8\nK:G\nGABc dedB|]\n")
    assert result["parses"] and not result["complete_bars"]


def test_abc_garbage_does_not_parse():
    assert not abc_notation.check_tune("this is not music at all")["parses"]


def test_pitch_entropy():
    assert abc_notation.entropy([0] * 10) == 0
    assert abc_notation.entropy(list(range(12))) == pytest.approx(3.58496, abs=1e-4)


def column(ground: int = 2) -> str:
    """One column, bottom to top: `ground` solid tiles, then sky."""
    return "X" * ground + "-" * (levels.ROWS - ground)


def test_flat_level_is_playable():
    cols = [column()] * 20
    assert levels.well_formed(cols) and levels.playable(cols)


def test_wide_gap_is_not_playable():
    cols = [column()] * 5 + ["-" * 14] * 6 + [column()] * 5
    assert levels.well_formed(cols) and not levels.playable(cols)


def test_narrow_gap_and_low_step_are_playable():
    cols = [column()] * 5 + ["-" * 14] * 3 + [column(5)] * 5  # a 3-wide gap onto a 3-higher ledge
    assert levels.playable(cols)


def test_wall_too_high_is_not_playable():
    cols = [column()] * 5 + [column(8)] * 5  # 6 tiles up: more than a jump
    assert not levels.playable(cols)


def test_unknown_tile_is_not_well_formed():
    assert not levels.well_formed([column()] * 3 + ["XXZ" + "-" * 11])
    assert not levels.well_formed([column()])  # one column is not a level


def test_level_run_reads_prompt_plus_completion_and_ignores_cut_line():
    sample = {"prompt": "\n".join([column()] * 3) + "\n", "completion": "\n".join([column()] * 9) + "\nXX--"}
    out = levels.run([sample], None)
    assert out == {"level_well_formed_rate": 1.0, "level_playable_rate": 1.0}
    assert sample["level"]["columns"] == 12


def test_level_needs_new_columns_and_rejects_garbage():
    prompt = "\n".join([column()] * 4) + "\n"
    short = {"prompt": prompt, "completion": "\n".join([column()] * 3) + "\n"}  # only 3 new columns
    garbage = {"prompt": prompt, "completion": "\\SSSSxxd<[[XxxEXXXXXXXXXXXXx-?--xxEXXXX"}  # no column at all
    assert levels.run([short, garbage], None) == {"level_well_formed_rate": 0.0, "level_playable_rate": 0.0}


def test_copy_span_finds_copied_and_fresh_samples(tmp_path):
    corpus = [list(range(100, 200)), list(range(300, 400))]
    copying.build_index(corpus, tmp_path)
    index = copying.Index(tmp_path)
    assert index.longest_span(list(range(120, 180))) == 60  # copied verbatim
    assert type(index.longest_span(list(range(120, 180)))) is int  # JSON-serialisable
    assert index.longest_span([1, 2, 3] + list(range(150, 162)) + [7, 7]) == 12  # a copied piece inside
    assert index.longest_span(list(range(1000, 1060))) == 0  # fresh
    assert index.longest_span(list(range(195, 200)) + list(range(300, 303))) == 0  # under 8 tokens: not measured


def test_copy_never_spans_document_boundaries(tmp_path):
    copying.build_index([list(range(10, 30)), list(range(30, 50))], tmp_path)
    # 20..39 is contiguous as numbers but crosses the boundary between the two documents
    assert copying.Index(tmp_path).longest_span(list(range(20, 40))) == 10


def test_copy_check_share(tmp_path):
    copying.build_index([list(range(100, 300))], tmp_path)

    class Context:
        copy_span = 50

        def copy_index(self):
            return copying.Index(tmp_path)

    samples = [{"completion_ids": list(range(100, 160))}, {"completion_ids": list(range(500, 560))}]
    out = copying.run(samples, Context())
    assert out["copy_share"] == 0.5 and out["copy_longest_span_max"] == 60
    assert [s["copy_span"] for s in samples] == [60, 0]


def test_distinct_n():
    assert distinct.distinct_n([[1, 2, 1, 2]], 1) == 0.5
    assert distinct.distinct_n([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)
    assert distinct.distinct_n([[1, 2, 3]], 3) == 1.0


def test_play_format():
    good = "**VIOLA**  \nWhat country, friends, is this?\n\n**Captain**  \nThis is Illyria, lady.\n\n_Exeunt_\n"
    bad = "Once upon a time there was a play.\nIt had no speakers at all.\n"
    assert play_format.analyse(good) == {"follows_format": True, "turns": 2, "lines_per_turn": 1.0}
    assert not play_format.analyse(bad)["follows_format"]
    assert not play_format.analyse("**VIOLA**\n**Captain**\nHello\n")["follows_format"]  # a turn without speech
    prose = "**VIOLA**  \n" + "The forest is a place of love, where the past is intertwined with the present, and more. " * 2
    assert not play_format.analyse(prose)["follows_format"]  # one speaker and a paragraph: not a scene


def test_play_format_accepts_every_corpus_scene():
    from engine.corpora import shakespeare

    (path,) = shakespeare.play_files(plays=("twelfth-night",))
    assert all(play_format.analyse(scene["text"])["follows_format"] for scene in shakespeare.scenes(path))


def test_abc_reference_uses_separate_training_tunes():
    class Context:
        def training_texts(self):
            return [VALID_TUNE, VALID_TUNE.replace("X:1", "X:7")]

    samples = [{"prompt": "", "completion": VALID_TUNE}]
    out = abc_notation.run(samples, Context())
    assert out["abc_parse_rate"] == 1.0 and out["abc_complete_bars_rate"] == 1.0
    assert out["abc_corpus_pitch_entropy"] == pytest.approx(out["abc_pitch_entropy"])


def test_training_documents_join_packed_blocks(tmp_path):
    from datasets import Dataset, DatasetDict

    from engine.stages.loading import training_documents

    eos = 0
    stream = list(range(1, 40)) + [eos] + list(range(50, 60)) + [eos]  # two texts, packed into blocks of 16
    blocks = [stream[i:i + 16] for i in range(0, len(stream), 16)]
    DatasetDict({"train": Dataset.from_dict({"input_ids": blocks})}).save_to_disk(str(tmp_path / "dataset"))
    documents = training_documents(tmp_path, eos)
    assert documents == [list(range(1, 40)) + [eos], list(range(50, 60)) + [eos]]
    copying.build_index(documents, tmp_path)
    assert copying.Index(tmp_path).longest_span(list(range(10, 30))) == 20  # crosses the block boundary at 16


def test_copy_span_found_behind_many_repeats(tmp_path):
    # tokens 1..19 occur in 200 short texts; only the last text goes on, to 59
    copying.build_index([list(range(1, 20)) + [99]] * 200 + [list(range(1, 60))], tmp_path)
    assert copying.Index(tmp_path).longest_span(list(range(1, 60))) == 59
