"""Evaluators of generated samples, on hand-made cases with known answers."""
from __future__ import annotations

import random

import pytest

from engine.checks import abc_notation, copying, distinct, level_novelty, levels, mario_agent, play_format
from engine.corpora import mario_levels
from conftest import corpus_or_skip
from engine.stages import copy_index

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
    assert out["level_well_formed_rate"] == 1.0 and out["level_playable_rate"] == 1.0
    assert sample["level"]["columns"] == 12
    assert sample["level"]["judge"] == "agent" if mario_agent.available() is None else sample["level"]["judge"].startswith("rules")


def test_level_needs_new_columns_and_rejects_garbage():
    prompt = "\n".join([column()] * 4) + "\n"
    short = {"prompt": prompt, "completion": "\n".join([column()] * 3) + "\n"}  # only 3 new columns
    garbage = {"prompt": prompt, "completion": "\\SSSSxxd<[[XxxEXXXXXXXXXXXXx-?--xxEXXXX"}  # no column at all
    out = levels.run([short, garbage], None)
    assert out["level_well_formed_rate"] == 0.0 and out["level_playable_rate"] == 0.0 and out["level_novel_valid_rate"] == 0.0


def agent_or_skip():
    why = mario_agent.available()
    if why:
        pytest.skip(f"MarioGPT's agent cannot run here: {why}")


def real_window(start: int, width: int = 24) -> list[str]:
    rows = corpus_or_skip(lambda: mario_levels.grid(mario_levels.files({})[0]))
    return mario_levels.to_columns(rows, start, width).splitlines()


def test_the_agent_wins_real_windows_the_rules_call_unplayable_and_loses_a_wide_pit():
    agent_or_skip()
    # a real window the reachability rules reject (found on the corpus: their 4-up jump limit), that the agent wins
    rules_reject = next(start for start in range(0, 2000, 8) if not levels.playable(real_window(start)))
    played = levels.judge(real_window(rules_reject), None)
    assert played == {"playable": True, "completion": 1.0, "judge": "agent"}, rules_reject
    pit = [column()] * 5 + ["-" * 14] * 14 + [column()] * 5
    lost = levels.judge(pit, None)
    assert lost["judge"] == "agent" and not lost["playable"] and lost["completion"] < 0.8


def test_without_java_the_rules_judge_and_say_so():
    verdict = levels.judge([column()] * 12, "no Java runtime (apt-get install default-jre-headless)")
    assert verdict == {"playable": True, "completion": 1.0, "judge": "rules (no Java runtime (apt-get install default-jre-headless))"}


def test_level_identity_finds_a_copied_window_and_passes_a_new_one():
    windows = level_novelty.Windows([real_window(start) for start in range(0, 400, 4)])
    assert windows.identity(real_window(40)[5:17]) == 1.0  # 12 columns of a training window
    assert windows.identity(real_window(40) + real_window(200)) == 1.0  # two copied windows glued
    new = [("XX" + "-" * 5 + "SS" + "-" * 5), ("X" * 4 + "-" * 5 + "Q" + "-" * 4)] * 6
    assert windows.identity(new) < level_novelty.COPY_IDENTITY


class TextsContext:  # what the checks read of a CheckContext: the training texts, and what they derive once
    data = "data"

    def __init__(self, texts):
        self.texts, self.built = texts, {}

    def training_texts(self):
        return self.texts

    def derived(self, name, build):
        return self.built.setdefault(name, build())


def test_a_playable_copy_is_not_novel_valid():
    agent_or_skip()
    texts = ["\n".join(real_window(start)) for start in range(0, 400, 4)]
    prompt = "\n".join(real_window(40)[:4]) + "\n"
    copy = {"prompt": prompt, "completion": "\n".join(real_window(40)[4:]) + "\n"}
    out = levels.run([copy], TextsContext(texts))
    assert copy["level"]["identity"] == 1.0 and not copy["level"]["novel_valid"]
    assert out["level_novel_valid_rate"] == 0.0 and out["level_identity"] == 1.0


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


def test_abc_after_an_instruction_and_whether_it_follows_it():
    def Context():
        return TextsContext([VALID_TUNE])

    instruction = "Write a folk tune in ABC notation called \"X\", in 4/4 time and the key of G.\n"
    samples = [{"prompt": instruction, "completion": VALID_TUNE, "fields": {"meter": "4/4", "key": "G"}},
               {"prompt": instruction, "completion": VALID_TUNE, "fields": {"meter": "6/8", "key": "G"}},
               {"prompt": instruction, "completion": "no tune here", "fields": {"meter": "4/4", "key": "G"}}]
    out = abc_notation.run(samples, Context())
    assert out["abc_parse_rate"] == pytest.approx(2 / 3)  # the instruction line is not read as ABC
    assert out["abc_follows_rate"] == pytest.approx(1 / 3)
    assert [s["abc"]["follows"] for s in samples] == [True, False, False]
    assert "abc_follows_rate" not in abc_notation.run([{"prompt": "", "completion": VALID_TUNE}], Context())


def test_abc_reference_uses_separate_training_tunes():
    samples = [{"prompt": "", "completion": VALID_TUNE}]
    out = abc_notation.run(samples, TextsContext([VALID_TUNE, VALID_TUNE.replace("X:1", "X:7")]))
    assert out["abc_parse_rate"] == 1.0 and out["abc_complete_bars_rate"] == 1.0
    assert out["abc_corpus_pitch_entropy"] == pytest.approx(out["abc_pitch_entropy"])
    assert samples[0]["abc"]["similarity"] == 1.0 and out["abc_novel_valid_rate"] == 0.0  # a training tune


NEW_TUNE = """X:3
T:Not In Training
M:6/8
L:1/8
K:D
FAd fed|cBA BAG|FGA dcB|A3 A2:|
agf edc|dfe dcB|AFD GEC|D3 D3|]
"""


def test_abc_similarity_tells_a_near_copy_from_a_new_tune():
    from engine.checks import abc_novelty

    tunes = abc_novelty.Tunes([VALID_TUNE])
    transposed_title = VALID_TUNE.replace("Known Good Reel", "Another Name").replace('GABc', '"G"GABc')
    assert tunes.similarity(transposed_title) == 1.0  # a new title and a chord name do not make a tune new
    assert tunes.similarity(NEW_TUNE) < abc_novelty.COPY_SIMILARITY
    samples = [{"prompt": "", "completion": NEW_TUNE}, {"prompt": "", "completion": "not a tune"},
               {"prompt": "", "completion": FRAGMENT}]
    out = abc_notation.run(samples, TextsContext([VALID_TUNE]))
    assert out["abc_novel_valid_rate"] == pytest.approx(1 / 3) and samples[0]["abc"]["novel_valid"]
    assert samples[2]["abc"]["parses"] and samples[2]["abc"]["similarity"] is None  # 5 notes: no run of 8 to compare
    assert not samples[2]["abc"]["novel_valid"] and out["abc_nearest_similarity"] == samples[0]["abc"]["similarity"]


FRAGMENT = "X:4\nT:Five Notes\nM:4/4\nL:1/8\nK:D\nFAd fe|]\n"


def test_training_documents_join_packed_blocks(tmp_path):
    from datasets import Dataset, DatasetDict

    from engine.training.loading import training_documents

    eos = 0
    stream = list(range(1, 40)) + [eos] + list(range(50, 60)) + [eos]  # two texts, packed into blocks of 16
    blocks = [stream[i:i + 16] for i in range(0, len(stream), 16)]
    DatasetDict({"train": Dataset.from_dict({"input_ids": blocks})}).save_to_disk(str(tmp_path / "dataset"))
    assert training_documents(tmp_path, eos) == [list(range(1, 40)) + [eos], list(range(50, 60)) + [eos]]


POEMS = ["登鹳雀楼\n白日依山尽黄河入海流\n欲穷千里目更上一层楼", "静夜思\n床前明月光疑是地上霜\n举头望明月低头思故乡",
         "春晓\n春眠不觉晓处处闻啼鸟\n夜来风雨声花落知多少", "相思\n红豆生南国春来发几枝\n愿君多采撷此物最相思"]


def tiny_bpe(texts: list[str], vocab_size: int):
    """A byte-level BPE trained on `texts`, as the tokenizer stage trains one."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")


def copy_context(folder, texts: list[str], tokenizer, copy_span: int):
    """The check's context over an index built as the pipeline builds it: texts -> token ids packed in
    blocks of 16 (the data stage) -> decoded back to text and indexed (the copy-index stage)."""
    from datasets import Dataset, DatasetDict

    stream = [t for text in texts for t in tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]]
    blocks = [stream[i:i + 16] for i in range(0, len(stream), 16)]
    DatasetDict({"train": Dataset.from_dict({"input_ids": blocks})}).save_to_disk(str(folder / "dataset"))
    copying.build_index(copy_index.training_texts(folder, tokenizer), folder)

    class Context:
        def copy_index(self):
            return copying.Index(folder)

    context = Context()
    context.copy_span = copy_span
    return context


def generated(tokenizer, text: str) -> dict:
    """A sample row as the generate stage writes it: the completion decoded from the model's tokens."""
    ids = tokenizer(text)["input_ids"]
    return {"completion": tokenizer.decode(ids, skip_special_tokens=True), "completion_ids": ids}


def test_copy_finds_a_chinese_line_that_a_bpe_made_one_token(tmp_path):
    tokenizer = tiny_bpe(POEMS, 600)
    assert len(tokenizer("床前明月光疑是地上霜")["input_ids"]) == 1  # counted in tokens, the copy was 3 tokens long
    sample = generated(tokenizer, "甲乙丙\n床前明月光疑是地上霜\n丁戊己")
    out = copying.run([sample], copy_context(tmp_path, POEMS, tokenizer, copy_span=10))
    assert sample["copy_span"] == 12 and sample["copy_passage"] == "\n床前明月光疑是地上霜\n"
    assert sample["copy_source"] == {"document": 1, "offset": 3, "begins": POEMS[1]}
    assert out["copy_share"] == 1.0 and out["copy_longest_chars_max"] == 12 and out["copy_threshold_chars"] == 10


def test_copy_fresh_samples_report_next_to_nothing(tmp_path):
    tokenizer = tiny_bpe(POEMS, 600)
    new_verse = generated(tokenizer, "明月照我心春风吹花落")  # the poems' characters, but new lines
    other = generated(tokenizer, "Nothing in this sample was written in the training texts.")
    out = copying.run([new_verse, other], copy_context(tmp_path, POEMS, tokenizer, copy_span=10))
    assert (new_verse["copy_span"], new_verse["copy_passage"]) == (2, "明月")  # a common word, not a copy
    assert other["copy_span"] == 0 and other["copy_passage"] == "" and other["copy_source"] is None
    assert out == {"copy_longest_chars_max": 2, "copy_longest_chars_mean": 1.0, "copy_share": 0.0,
                   "copy_threshold_chars": 10}


def test_copy_reports_the_longest_passage_and_its_text(tmp_path):
    texts = ["The rain in Spain stays mainly in the plain.", "Short text.",
             "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, "
             "I went to sea."]
    copying.build_index(texts, tmp_path)
    index = copying.Index(tmp_path)
    found = index.longest_passage("xx stays mainly in the xx Some years ago, never mind how long xx")
    assert found == copying.Passage(37, " Some years ago, never mind how long ", 2, 16, texts[2][:40])  # not text 0's 21
    long = {"completion": "Q" + texts[2] + "Q"}
    copying.run([long], type("Context", (), {"copy_span": 100, "copy_index": lambda self: index})())
    assert long["copy_span"] == len(texts[2]) and long["copy_passage"] == texts[2][:79] + "…"


def test_copy_threshold_is_the_same_under_two_tokenizers(tmp_path):
    texts = POEMS + ["The quick brown fox jumps over the lazy dog, and the dog sleeps on."]
    samples = ["新句\n春眠不觉晓处处闻啼鸟\n夜来风雨声花落知多少\n新句", "甲乙丙\n白日依山尽黄河入海流\n丁",
               "A slow red fox jumps over the lazy dog, and nobody wakes.", "全新的句子没有抄写"]
    coarse, fine = tiny_bpe(texts, 600), tiny_bpe(texts, 260)
    results = {}
    for name, tokenizer in (("coarse", coarse), ("fine", fine)):
        rows = [generated(tokenizer, s) for s in samples]
        out = copying.run(rows, copy_context(tmp_path / name, texts, tokenizer, copy_span=20))
        results[name] = (out, [(r["copy_span"], r["copy_passage"], r["copy_source"]) for r in rows])
    assert (len(coarse("白日依山尽黄河入海流")["input_ids"]), len(fine("白日依山尽黄河入海流")["input_ids"])) == (1, 30)
    out, found = results["coarse"]
    assert [length for length, _, _ in found] == [22, 12, 34, 0] and out["copy_share"] == 0.5
    assert results["fine"] == results["coarse"]


def test_copy_never_crosses_from_one_text_to_the_next(tmp_path):
    copying.build_index(["abcdefghij", "klmnopqrst"], tmp_path)
    found = copying.Index(tmp_path).longest_passage("fghijklmno")  # contiguous only across the boundary
    assert (found.length, found.text) == (5, "fghij")


def test_copy_found_behind_many_repeats(tmp_path):
    start = "to be or not to be, "  # in 200 short texts; only the last goes on
    copying.build_index([start + "!"] * 200 + [start + "that is the question"], tmp_path)
    found = copying.Index(tmp_path).longest_passage(start + "that is the question")
    assert found.length == 40 and found.document == 200


def test_copy_search_is_exact(tmp_path):
    """Against a brute-force longest common substring, on small alphabets that repeat a lot."""
    rng = random.Random(0)
    for trial in range(60):
        alphabet = rng.choice(["ab", "abc", "甲乙丙", "X-\n"])
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(rng.randint(1, 4))]
        sample = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        folder = tmp_path / str(trial)
        folder.mkdir()
        copying.build_index(texts, folder)
        found = copying.Index(folder).longest_passage(sample)
        assert found.length == max(longest_common(sample, t) for t in texts)
        if found.length:
            assert texts[found.document][found.offset:found.offset + found.length] == found.text in sample


def longest_common(a: str, b: str) -> int:
    return max((n for i in range(len(a)) for n in range(len(a) - i, 0, -1) if a[i:i + n] in b), default=0)


def test_suffix_array_sorts_suffixes():
    import numpy as np

    for text in ["", "a", "banana", "abracadabra", "甲乙甲乙甲", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]:
        order = copying.suffix_array(np.array([ord(c) for c in text], dtype=np.int64))
        assert order.tolist() == sorted(range(len(text)), key=lambda i: text[i:])


def test_the_agent_starts_on_the_levels_own_first_ledge_and_on_ground_before_a_gap():
    ledge = ["-" * 6] * 8 + ["X-----"] + ["------"] * 5  # rows top to bottom: the first column's ledge, 5 rows up
    padded = mario_agent.padded(ledge)
    assert [row[:mario_agent.PAD] for row in padded][8] == "X" * mario_agent.PAD  # the ledge goes on to the left
    assert [row[0] for row in padded].index(mario_agent.START) == 7  # Mario starts on it
    assert all(row[-mario_agent.PAD:] == ("X" * mario_agent.PAD if r >= 12 else "-" * mario_agent.PAD)
               for r, row in enumerate(padded))  # the last column is a gap: ground after it
    two_floors = ["-" * 4] * 5 + ["X---"] + ["----"] * 6 + ["XXXX"] * 2  # a ledge above the ground, and an end in mid-air
    padded = mario_agent.padded([row[::-1] for row in two_floors])  # the ledge in the last column
    assert [row[-1] for row in padded] == ["-"] * 5 + ["X"] + ["-"] * 6 + ["X", "X"]  # its ledge over the ground
    assert [row[0] for row in mario_agent.padded(two_floors)].index(mario_agent.START) == 4  # the highest floor


def test_a_lost_level_is_played_again_and_completion_is_the_levels_own(monkeypatch):
    plays = iter([{"won": False, "completion": 0.5}, {"won": True, "completion": 1.0}])
    monkeypatch.setattr(mario_agent, "once", lambda rows: next(plays))
    assert mario_agent.play(["-"]) == {"won": True, "completion": 1.0}  # a win in the second play counts
    plays = iter([{"won": False, "completion": 0.5}, {"won": False, "completion": 0.2}])
    assert mario_agent.play(["-"]) == {"won": False, "completion": 0.5}
    plays = iter([{"failed": "the agent ran past its time limit"}])
    assert "failed" in mario_agent.play(["-"])  # a timeout is not played again
    width = 24  # Mario's x over the padded level's exit: PAD columns before the level's first count for nothing
    assert mario_agent.own_share(mario_agent.PAD / (width + 2 * mario_agent.PAD - 1), width) == 0.0
    assert mario_agent.own_share(0.5, width) == pytest.approx((0.5 * 29 - 3) / 23, abs=1e-4)
    assert mario_agent.own_share(0.99, width) == 1.0  # past the level's last column, lost in the padding


def test_play_format_refuses_lines_without_a_word():
    hollow = "**VIOLA**  \n*  \n#  \n#  \n#  \n**OLIVIA**  \n*  \n#  \n#  \n"  # a sample the grammar let through before
    assert not play_format.analyse(hollow)["follows_format"]
    assert play_format.analyse("**VIOLA**  \nO!\n**OLIVIA**  \nAy.\n")["follows_format"]  # short speech is speech


def test_bar_accuracy_grades_a_tune_by_its_wrong_bars():
    assert abc_notation.check_tune(VALID_TUNE)["bar_accuracy"] == 1.0
    half = VALID_TUNE.replace("GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|", "GABc dedB|dedB ded|c2ec B2d|c2A2 A2BA|")
    assert abc_notation.check_tune(half)["bar_accuracy"] == pytest.approx(1 - 2 / 8)  # 2 of 8 bars short
    assert abc_notation.check_tune("this is not music at all")["bar_accuracy"] == 0.0


def test_bar_accuracy_counts_a_repeated_wrong_bar_once():
    tune = "X:1\nM:4/4\nL:1/8\nK:G\n|:GABc dedB|dedB ded|c2ec B2dB|c2A2 A2BA:|\n"  # bar 2 short, played twice
    assert abc_notation.check_tune(tune)["bar_accuracy"] == pytest.approx(0.75)


def test_level_identity_reads_the_most_common_window_width():
    windows = [real_window(start) for start in range(0, 200, 4)]
    assert level_novelty.Windows([real_window(0, 30)] + windows).identity(real_window(40)[5:17]) == 1.0
