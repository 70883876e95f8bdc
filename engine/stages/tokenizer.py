"""Tokenizer stage (models built from scratch only): a byte-level BPE trained on the train split."""
from __future__ import annotations

from engine.stages import data as data_stage

VERSION = 1
LIBRARIES = ("tokenizers", "transformers")
ROLES = ()  # input roles a pipeline may bind (engine/pipeline.py)
PRODUCES = ("tokenizer",)  # what out/ holds; the first that exists is what `engine show` points at
SPECIAL = ["<|endoftext|>", "<|pad|>"]


def reads(spec) -> tuple[str, ...]:
    return ("seed", "data.source", "data.sources", "data.mix", "data.text", "data.prompt", "data.completion", "data.chosen", "data.rejected",
            "data.messages", "data.split", "data.max_records", "data.label", "data.on_bad_rows", "model.config.tokenizer")


def inputs(spec) -> dict:
    return data_stage.inputs(spec)


def run(ctx) -> dict:
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    data = ctx.params["data"]
    from engine.dataprep.rows import BadRows

    from engine.dataprep.instructions import texts as plain_texts

    texts = plain_texts(data_stage.load_splits(data, ctx.seed, ctx.spec_root, BadRows(data["on_bad_rows"]))["train"])
    vocab_size = ctx.params["model"]["config"]["tokenizer"]["train_vocab_size"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL, show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=SPECIAL[0], bos_token=SPECIAL[0],
                                        pad_token=SPECIAL[1], unk_token=None)
    tokenizer.save_pretrained(ctx.out / "tokenizer")
    ctx.log(f"trained a byte-level BPE tokenizer of {len(tokenizer):,} tokens on {len(texts):,} training texts")
    return {"facts": {"vocab_size": len(tokenizer), "texts": len(texts)}}
