"""What does constrained decoding cost per token on this CPU, per structured-generation library?

Libraries that work with transformers' `model.generate(logits_processor=...)`: llguidance (Lark and
GBNF grammars, regexes, JSON schemas; the engine's own processor, engine/constrain/library.py),
xgrammar (EBNF/GBNF, regexes, JSON schemas; its own transformers processor) and outlines-core
(regexes and JSON schemas only: outlines hands context-free grammars to llguidance or xgrammar; its
own processor, from outlines). Tokenizers: SmolLM2-135M's (49,152 tokens, read from the builtin
GGUF) and the tests' 300-token byte-level BPE (tests/tiny.py). Constraints: `regex` (level columns
of 14 tiles), `json` (a small JSON schema), `cfg` (an ABC-like context-free grammar in GBNF, which
xgrammar reads as is and llguidance converts to Lark).

Two measures:
  replay    no model: the tokens of a real document fed one by one, the mask computed before each
            (what a constraint costs per token whatever the model), and the time to read the
            tokenizer and to compile the grammar. For llguidance also the engine's built-in grammars
            (abc, level, svg, play) on real items of each format.
  generate  4 sequences sampled at once, as the generate stage does, unconstrained then constrained
            with the same seed, rounds interleaved (a neighbour's load falls on both): time per step,
            and the processor's own time per step (steadier than the difference on a loaded
            machine). The model: a random 2-layer Llama over the tokenizer's vocabulary (a step costs
            little, so the mask's cost shows whole); with `--real`, also SmolLM2-135M's own weights,
            where the ratio is the one a user sees. Goal (issue 26): at most 1.3x.

A library that is not installed is skipped (llguidance is a dependency; for the others:
pip install --no-deps xgrammar apache-tvm-ffi outlines outlines-core genson diskcache cloudpickle).
Run: .venv/bin/python bench/constrain_cost.py [--part replay|generate|both] [--tokens 32] [--repeats 3]
     [--real] [--only LIBRARY] [--tokenizers smollm2,tiny]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TILES = "-oxEXS?Q<>[]Bb"
LEVEL_REGEX = "(?:[" + re.escape(TILES) + "]{14}\\n)+"
JSON_SCHEMA = {"type": "object", "properties": {
    "title": {"type": "string", "maxLength": 40},
    "meter": {"enum": ["2/4", "3/4", "4/4", "6/8"]},
    "bars": {"type": "array", "items": {"type": "string", "pattern": "^[A-Ga-g,'/2-8 ]{1,16}$"}}},
    "required": ["title", "meter", "bars"], "additionalProperties": False}
ABC_GBNF = r"""
root ::= header body
header ::= "X:" [0-9]+ "\n" "T:" [A-Za-z ']+ "\n" "M:" meter "\n" "L:1/8\n" "K:" key "\n"
meter ::= "2/4" | "3/4" | "4/4" | "6/8" | "C"
key ::= [A-G] ("#" | "b")? ("m" | "dor" | "mix")?
body ::= line+
line ::= ("|:" | "|")? bar+ "\n"
bar ::= element+ (" | " | "|" | ":|" | "||" | "|]")
element ::= note | chord | rest | " "
note ::= ("^" | "_" | "=")? [A-Ga-g] ("," | "'")* length?
chord ::= "[" note note+ "]" length?
rest ::= "z" length?
length ::= [2-8] | "/" | "/2" | "3/2"
"""
PROMPTS = {"regex": "", "json": "A tune as JSON: ", "cfg": "A tune in ABC notation:\n"}
DOCUMENTS = {  # what replay feeds, one for each constraint (the level is real: see level_window)
    "json": json.dumps({"title": "The Road to Lisdoonvarna", "meter": "6/8",
                        "bars": ["G2B d2B", "c2A F2A", "G2B d2B", "c2A F2A"]}),
    "cfg": "X:1\nT:The Road to Lisdoonvarna\nM:6/8\nL:1/8\nK:G\n|:G2B d2B|c2A F2A|G2B d2B|c2A F2A|\n"
           "G2B d2B|c2A F2A|[GB]2A B2d:|\n",
}


def level_window(width: int = 24) -> str:
    from engine.corpora import mario_levels

    rows = mario_levels.grid(mario_levels.files({})[0])
    return mario_levels.to_columns(rows, 200, width) + "\n"


def real_items() -> dict[str, str]:
    """One real item of each built-in format (skipping a format whose corpus is not installed)."""
    from engine.errors import StageError

    out = {}
    try:
        from engine.corpora import abc_tunes

        tunes = [t for p in abc_tunes.files({"collections": ["oneills1850"]}) for t in abc_tunes.tunes(p)]
        out["abc"] = next(t["music"] for t in tunes if t["title"].startswith("The Green Woods")) + "\n"
    except (StageError, StopIteration):
        pass
    out["level"] = level_window()
    try:
        from engine.corpora import shakespeare

        scene = list(shakespeare.scenes(shakespeare.play_files(plays=["twelfth-night"])[0]))[4]
        out["play"] = f"# {scene['title']}\n\n{scene['text'][:1500].rsplit(chr(10), 1)[0]}\n"
    except StageError:
        pass
    from engine.formats import svg_normal

    out["svg"] = svg_normal.normalise(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><g fill="#cc0000" stroke="#000">'
        '<rect x="2" y="2" width="60" height="44" style="stroke-width:2"/><circle cx="32" cy="24" r="10" fill="#fff"/>'
        '<path d="M 10 40 L 54 40 L 32 8 Z" fill-opacity="0.5"/></g></svg>') + "\n"
    return out


def load_tokenizers(names: set[str]) -> dict:
    from transformers import AutoTokenizer

    from engine.packaged import BUILTIN_MODELS
    from tiny import make_tiny_model

    out = {}
    if "smollm2" in names:
        gguf = BUILTIN_MODELS["smollm2-135m"].locate("the SmolLM2 tokenizer")
        out["smollm2"] = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if "tiny" in names:
        out["tiny"] = AutoTokenizer.from_pretrained(make_tiny_model(Path(tempfile.mkdtemp()) / "tiny", "llama"))
    return out


def random_model(vocab: int, eos: int):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=True)
    return AutoModelForCausalLM.from_config(config).eval()


def real_model():
    from transformers import AutoModelForCausalLM

    from engine.packaged import BUILTIN_MODELS

    gguf = BUILTIN_MODELS["smollm2-135m"].locate("SmolLM2")
    return AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()


# -- one adapter per library: prepare(tokenizer, vocab) -> state (the tokenizer, read once);
#    compile(state, kind, text) -> compiled (None: the library has no such form);
#    processor(compiled) -> a fresh logits processor; replay(compiled, ids) -> seconds per token

class Llguidance:
    def prepare(self, tokenizer, vocab):
        return (tokenizer, vocab)

    def compile(self, state, kind, text):
        from engine.constrain import library

        form = {"regex": "regex", "json": "json_schema", "cfg": "grammar", "lark": "lark"}[kind]
        return library.Masker(library.grammar(form, text), state[0], state[1], kind)

    def prepare_time(self, compiled) -> float:
        return compiled.adapt_s

    def processor(self, compiled):
        return compiled.processor()

    def replay(self, compiled, ids):
        import numpy as np

        matcher = compiled.matcher.deep_copy()
        mask = np.zeros((compiled.tokenizer.vocab_size + 31) // 32, dtype=np.int32)
        start = time.perf_counter()
        for token in ids:
            matcher.unsafe_compute_mask_ptr(mask.ctypes.data, mask.nbytes)
            assert matcher.consume_token(token), matcher.get_error()
        return (time.perf_counter() - start) / len(ids)


class Xgrammar:
    def prepare(self, tokenizer, vocab):
        import xgrammar

        return xgrammar.GrammarCompiler(xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab))

    def compile(self, state, kind, text):
        if kind == "lark":
            return None
        return {"regex": state.compile_regex, "json": state.compile_json_schema, "cfg": state.compile_grammar}[kind](text)

    def processor(self, compiled):
        import xgrammar.contrib.hf

        return xgrammar.contrib.hf.LogitsProcessor(compiled)

    def replay(self, compiled, ids):
        import xgrammar

        matcher = xgrammar.GrammarMatcher(compiled)
        mask = xgrammar.allocate_token_bitmask(1, compiled.tokenizer_info.vocab_size)
        start = time.perf_counter()
        for token in ids:
            matcher.fill_next_token_bitmask(mask, 0)
            assert matcher.accept_token(token)
        return (time.perf_counter() - start) / len(ids)


class OutlinesCore:
    def prepare(self, tokenizer, vocab):
        from outlines_core import Vocabulary

        self.vocab = vocab
        words: dict[str, list[int]] = {}
        for token, index in tokenizer.get_vocab().items():
            if index != tokenizer.eos_token_id:
                words.setdefault(tokenizer.convert_tokens_to_string([token]), []).append(index)
        return Vocabulary(tokenizer.eos_token_id, words)

    def compile(self, state, kind, text):
        from outlines_core import Index
        from outlines_core.json_schema import build_regex_from_schema

        if kind not in ("regex", "json"):
            return None  # outlines passes a context-free grammar to llguidance or xgrammar
        return Index(build_regex_from_schema(text) if kind == "json" else text, state)

    def processor(self, compiled):
        from outlines.backends.outlines_core import OutlinesCoreLogitsProcessor

        return OutlinesCoreLogitsProcessor(compiled, "torch")

    def replay(self, compiled, ids):
        from outlines_core import Guide
        from outlines_core.kernels.torch import allocate_token_bitmask, fill_next_token_bitmask

        guide = Guide(compiled)
        mask = allocate_token_bitmask(self.vocab)
        start = time.perf_counter()
        for token in ids:
            fill_next_token_bitmask(guide, mask)
            guide.advance(token_id=token, return_tokens=False)
        return (time.perf_counter() - start) / len(ids)


LIBRARIES = {"llguidance": Llguidance, "xgrammar": Xgrammar, "outlines-core": OutlinesCore}


class Timed:
    """A logits processor's own time per call, apart from the model's."""

    def __init__(self, processor, totals: dict):
        self.processor, self.totals = processor, totals

    def __call__(self, input_ids, scores):
        start = time.perf_counter()
        out = self.processor(input_ids, scores)
        self.totals["seconds"] += time.perf_counter() - start
        self.totals["calls"] += 1
        return out


def generate_once(model, encoded, tokens, seed, make=None) -> tuple[float, int, object]:
    import torch

    torch.manual_seed(seed)
    extra = {"logits_processor": [make()]} if make else {}
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**encoded, max_new_tokens=tokens, do_sample=True, temperature=1.0, top_k=0,
                             num_return_sequences=4, pad_token_id=model.config.eos_token_id, **extra)
    return time.perf_counter() - start, out.shape[1] - encoded["input_ids"].shape[1], out


def compare(model, tokenizer, prompt, tokens, repeats, make) -> dict:
    """Per step, median over `repeats` rounds of an unconstrained call then a constrained one."""
    encoded = tokenizer(prompt or tokenizer.eos_token, return_tensors="pt")
    generate_once(model, encoded, 4, 0, make)  # warm both paths up
    plain, constrained, totals, text = [], [], {"seconds": 0.0, "calls": 0}, ""
    for seed in range(repeats):
        wall, steps, _ = generate_once(model, encoded, tokens, seed)
        plain.append(wall / steps)
        wall, steps, out = generate_once(model, encoded, tokens, seed, lambda: Timed(make(), totals))
        constrained.append(wall / steps)
        text = tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
    plain_s, constrained_s, mask_s = statistics.median(plain), statistics.median(constrained), totals["seconds"] / totals["calls"]
    return {"plain_ms": plain_s * 1e3, "constrained_ms": constrained_s * 1e3, "ratio": constrained_s / plain_s,
            "mask_ms": mask_s * 1e3, "mask_ratio": (plain_s + mask_s) / plain_s, "sample": text[:40]}


def replay_part(tokenizers, only) -> list[dict]:
    documents = {**DOCUMENTS, "regex": level_window()}
    constraints = {"regex": LEVEL_REGEX, "json": json.dumps(JSON_SCHEMA), "cfg": ABC_GBNF}
    rows = []
    for tok_name, tokenizer in tokenizers.items():
        for lib_name, lib in LIBRARIES.items():
            if only and lib_name not in only:
                continue
            try:
                adapter = lib()
                start = time.perf_counter()
                state = adapter.prepare(tokenizer, len(tokenizer))
                prepare = time.perf_counter() - start
            except ImportError as exc:
                print(f"{lib_name}: skipped ({exc})", file=sys.stderr)
                continue
            cases = [(kind, text, documents[kind]) for kind, text in constraints.items()]
            if lib_name == "llguidance":
                from engine.constrain.grammars import BUILTINS

                cases += [(f"builtin {name}", BUILTINS[name].lark, text) for name, text in real_items().items()]
            for kind, text, document in cases:
                start = time.perf_counter()
                compiled = adapter.compile(state, "lark" if kind.startswith("builtin") else kind, text)
                compile_s = time.perf_counter() - start
                if compiled is None:
                    continue
                if lib_name == "llguidance":  # the tokenizer is read inside the Masker: apart from compiling
                    prepare, compile_s = compiled.adapt_s, compiled.compile_s
                ids = tokenizer(document, add_special_tokens=False)["input_ids"]
                try:
                    per_token = statistics.median(adapter.replay(compiled, ids) for _ in range(3))
                except (AssertionError, ValueError) as exc:  # the library refused a token of the real document
                    print(f"replay   {tok_name:7} {lib_name:13} {kind:15} failed: {str(exc)[:100]}", flush=True)
                    continue
                rows.append({"part": "replay", "tokenizer": tok_name, "library": lib_name, "constraint": kind,
                             "tokenizer_s": prepare, "compile_s": compile_s, "tokens": len(ids),
                             "mask_ms_per_token": per_token * 1e3})
                print(f"replay   {tok_name:7} {lib_name:13} {kind:15} tokenizer {prepare:5.2f} s  compile "
                      f"{compile_s * 1e3:7.1f} ms  mask {per_token * 1e3:6.3f} ms/token ({len(ids)} tokens)", flush=True)
    return rows


def generate_part(tokenizers, only, tokens, repeats, real) -> list[dict]:
    constraints = {"regex": LEVEL_REGEX, "json": json.dumps(JSON_SCHEMA), "cfg": ABC_GBNF}
    rows = []
    for tok_name, tokenizer in tokenizers.items():
        models = {"random": random_model(len(tokenizer), tokenizer.eos_token_id)}
        if real and tok_name == "smollm2":
            models["smollm2-135m"] = real_model()
        for model_name, model in models.items():
            for lib_name, lib in LIBRARIES.items():
                if only and lib_name not in only:
                    continue
                try:
                    adapter = lib()
                    state = adapter.prepare(tokenizer, model.config.vocab_size)
                except ImportError:
                    continue
                for kind, text in constraints.items():
                    compiled = adapter.compile(state, kind, text)
                    if compiled is None:
                        continue
                    row = {"part": "generate", "tokenizer": tok_name, "model": model_name, "library": lib_name,
                           "constraint": kind, **compare(model, tokenizer, PROMPTS[kind], tokens, repeats,
                                                         lambda: adapter.processor(compiled))}
                    rows.append(row)
                    print(f"generate {tok_name:7} {model_name:12} {lib_name:13} {kind:5} step {row['plain_ms']:7.2f} -> "
                          f"{row['constrained_ms']:7.2f} ms ({row['ratio']:4.2f}x); processor {row['mask_ms']:6.2f} ms "
                          f"a step ({row['mask_ratio']:4.2f}x) {row['sample'][:24]!r}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("replay", "generate", "both"), default="both")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--real", action="store_true", help="also time SmolLM2-135M's real weights")
    parser.add_argument("--only", action="append", help="a library (repeatable)")
    parser.add_argument("--tokenizers", default="smollm2,tiny")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch
    from transformers.utils import logging

    torch.set_num_threads(2)
    logging.set_verbosity_error()
    tokenizers = load_tokenizers(set(args.tokenizers.split(",")))
    rows = []
    if args.part in ("replay", "both"):
        rows += replay_part(tokenizers, args.only)
    if args.part in ("generate", "both"):
        rows += generate_part(tokenizers, args.only, args.tokens, args.repeats, args.real)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
