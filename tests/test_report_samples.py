"""Samples as the generate stage stores them for the report: `max_new_tokens` may cut a sample
between the bytes of one character (a byte-level tokenizer spells CJK text and emoji in bytes);
the sample then ends before that character, never in U+FFFD."""
from __future__ import annotations

TEXT = "the king 场景 🎭"


def test_a_sample_cut_inside_a_character_ends_before_it(tiny_model):
    from transformers import AutoTokenizer

    from engine.stages.generate import whole_characters

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids = tokenizer.encode(TEXT)
    assert tokenizer.decode(ids) == TEXT and len(ids) > len(TEXT)  # some characters take several tokens
    cut = [n for n in range(len(ids)) if tokenizer.decode(ids[:n]).endswith("\ufffd")]
    assert len(cut) == 7  # two places inside 场 and inside 景 (3 bytes each), three inside 🎭 (4 bytes)
    for n in range(len(ids) + 1):
        text, kept = whole_characters(tokenizer, ids[:n])
        assert "\ufffd" not in text and TEXT.startswith(text)
        assert kept == ids[:len(kept)] and tokenizer.decode(kept) == text  # the stored ids spell the stored text
        if n not in cut:
            assert kept == ids[:n]  # a sample that ends on a whole character keeps every token
    assert whole_characters(tokenizer, ids[:-1]) == ("the king 场景 ", ids[:-4])


def test_a_replacement_character_the_model_wrote_inside_a_sample_stays(tiny_model):
    from transformers import AutoTokenizer

    from engine.stages.generate import whole_characters

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids = tokenizer.encode("the \ufffd king")
    assert whole_characters(tokenizer, ids) == ("the \ufffd king", ids)
