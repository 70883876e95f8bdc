"""A llama-family model and its byte-level BPE tokenizer written as one GGUF file (gguf's writer).

The layout follows llama.cpp's `convert_hf_to_gguf.py` for `LlamaForCausalLM`: tensors renamed by
gguf's own name map, the query and key projections permuted into llama.cpp's rotary order (the
readers, llama.cpp's and transformers', undo it), norms kept in float32, and the tokenizer's
vocabulary, merges and special tokens in `tokenizer.ggml.*`. Quantised types: f32, f16, bf16 and
q8_0 (blocks of 32 weights with one scale; a matrix whose rows are not a multiple of 32 stays f16).
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.errors import EngineError

TYPES = ("f16", "bf16", "q8_0", "f32")
ARCHITECTURES = {"LlamaForCausalLM": "llama"}  # what this writer knows how to lay out
CONTROL, NORMAL, USER_DEFINED = 3, 1, 4  # gguf token types


def supported(config) -> str | None:
    """Why this model cannot be written as GGUF here, or None when it can."""
    names = getattr(config, "architectures", None) or []
    if not any(name in ARCHITECTURES for name in names):
        return (f"--format gguf writes llama-family models ({', '.join(ARCHITECTURES)}); this model is "
                f"{', '.join(names) or config.model_type}; use --format hf")
    return None


def write(model, tokenizer, path: Path, kind: str = "f16", name: str = "", bar=None) -> dict:
    """Write `model` (a LlamaForCausalLM, eval mode) and `tokenizer` to `path`; returns what was written."""
    import gguf
    import numpy as np

    problem = supported(model.config)
    if problem:
        raise EngineError(problem)
    config = model.config
    arch = gguf.MODEL_ARCH.LLAMA
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_name(name or "fine-tuned model")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                          "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[kind])
    _add_tokenizer(writer, tokenizer, config.vocab_size)
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    state = model.state_dict()
    tied = getattr(config, "tie_word_embeddings", False)
    counts: dict[str, int] = {}
    for hf_name, tensor in state.items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reads token_embd for the output when output.weight is absent
        if "rotary_emb" in hf_name:
            continue
        target = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise EngineError(f"--format gguf: no GGUF name for the tensor {hf_name}; use --format hf")
        data = tensor.detach().float().cpu().numpy()
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, heads)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, kv_heads)
        data, qtype = _encode(data, kind, gguf, np)
        counts[qtype.name] = counts.get(qtype.name, 0) + 1
        writer.add_tensor(target, data, raw_dtype=qtype)
        if bar is not None:
            bar.advance(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"tensors": counts, "bytes": path.stat().st_size}


def _rope_theta(config) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return theta


def _permute(weights, heads: int):
    """llama.cpp's rotary layout for a query (all heads) or key (key-value heads) projection
    (convert_hf_to_gguf.LlamaModel.permute)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _encode(data, kind: str, gguf, np):
    """(array to write, its GGML type): norms and vectors in f32, matrices in the asked type."""
    types = gguf.GGMLQuantizationType
    if data.ndim == 1 or kind == "f32":
        return data.astype(np.float32), types.F32
    if kind == "q8_0" and data.shape[-1] % 32 == 0:
        return gguf.quants.quantize(data, types.Q8_0), types.Q8_0
    if kind == "bf16":
        return gguf.quants.quantize(data, types.BF16), types.BF16
    return data.astype(np.float16), types.F16


def _add_tokenizer(writer, tokenizer, vocab_size: int) -> None:
    """A byte-level BPE tokenizer (GPT-2, Llama 3, SmolLM) as `tokenizer.ggml.*` metadata."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state["model"]
    if model.get("type") != "BPE":
        raise EngineError(f"--format gguf writes byte-level BPE tokenizers; this one is {model.get('type')}; use --format hf")
    vocab = dict(model["vocab"])
    special = {t["content"]: t["id"] for t in state.get("added_tokens", [])}
    vocab.update(special)
    by_id = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(vocab_size):  # ids past the tokenizer (padding rows of the embedding) get placeholders
        token = by_id.get(i, f"[PAD{i}]")
        tokens.append(token)
        types.append(CONTROL if token in special and _is_special(state, token) else
                     USER_DEFINED if token in special else NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for setter, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                             (writer.add_eos_token_id, tokenizer.eos_token_id),
                             (writer.add_pad_token_id, tokenizer.pad_token_id)):
        if token_id is not None:
            setter(int(token_id))
    writer.add_add_bos_token(False)
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)


def _is_special(state: dict, token: str) -> bool:
    return any(t["content"] == token and t.get("special") for t in state.get("added_tokens", []))
