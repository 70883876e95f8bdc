"""The model card (`README.md`) an export writes beside the model.

What a person taking the model elsewhere needs to trust it: the base model and its revision,
the data it learned from (each input with its content digest and its package's licence), the
numbers before and after fine-tuning from the record, how to load it, the engine version and
every stage key (so `engine show` on the spec finds the same run), and the resolved spec.
"""
from __future__ import annotations

import io
from importlib import metadata

from engine import __version__

LIBRARY = {"hf": "transformers", "adapter": "peft", "gguf": "gguf"}


def render(found, fmt: str, details: dict) -> str:
    record, nodes = found.record, found.record["nodes"]
    model_node = next((n for n in nodes.values() if n.get("kind") == "model"), {})
    lines = ["---", f"library_name: {LIBRARY[fmt]}", f"tags: [engine, {found.task}, fine-tuned]"]
    hub = found.spec.get("model.hub")
    if hub:
        lines.append(f"base_model: {hub}")
    lines += ["---", "", f"# {found.spec_name}", ""]
    description = found.spec.get("description")
    if description:
        lines += [description.strip(), ""]
    lines += [f"Fine-tuned with engine {__version__} from `{found.spec_label}` (stage `{found.stage}`, key "
              f"`{found.key}`), exported as `{fmt}`" + (f" ({details['type']}, {details['bytes']:,} bytes)" if fmt == "gguf" else "")
              + ".", ""]
    lines += ["## Base model", "", f"- {_base(found, model_node)}"]
    facts = model_node.get("facts", {})
    if facts.get("parameters"):
        lines.append(f"- {facts.get('architecture', '?')}, {facts['parameters'] / 1e6:.1f}M parameters, "
                     f"vocabulary {facts.get('vocab_size', '?')}")
    lora = found.spec.get("lora")
    if lora:
        lines.append(f"- LoRA r={lora.get('r')} alpha={lora.get('alpha')}"
                     + (" (merged into the base weights)" if details.get("merged") else " (adapter only)" if fmt == "adapter" else ""))
    lines += ["", "## Training data", "", "| input | content digest (sha256) | licence |", "|---|---|---|"]
    lines += _data_rows(nodes)
    lines += ["", "## Results", ""] + _results(found, nodes)
    lines += ["", "## How to load", "", "```python"] + _loading(fmt, details) + ["```", ""]
    if fmt == "gguf":
        lines += [f"Read back after writing: {details['read_back']}; tensor types {details['tensors']}.", ""]
    lines += ["## Stage keys", "", "| stage | key |", "|---|---|"]
    lines += [f"| {name} | `{node['key']}` |" for name, node in sorted(nodes.items())]
    lines += ["", f"Seed {record.get('seed')}. `engine show {found.spec_label}` in the project lists the same keys.", "",
              "## Spec (resolved, defaults filled)", "", "```yaml", _yaml(found.spec.tree).rstrip(), "```", ""]
    return "\n".join(lines)


def _base(found, model_node: dict) -> str:
    model = found.spec.get("model")
    if model.get("hub"):
        return f"`{model['hub']}` at revision `{model.get('revision')}` (Hugging Face Hub)"
    source = model_node.get("facts", {}).get("source")
    if model.get("builtin"):
        dist = source.split("(")[-1].split()[0] if source and "(" in source else None
        return f"{source or model['builtin']}" + (f", licence: {licence(dist)}" if dist else "")
    return source or ", ".join(f"{k}: {v}" for k, v in model.items() if isinstance(v, str))


def _data_rows(nodes: dict) -> list[str]:
    rows = []
    for node in nodes.values():
        if node.get("kind") != "data":
            continue
        inputs = node.get("payload", {}).get("inputs", {})
        packages = {label.removeprefix("package ") for label in inputs if label.startswith("package ")}
        for label, digest in sorted(inputs.items()):
            if label.startswith("package "):
                name = label.removeprefix("package ")
                rows.append(f"| package {name} {digest} | - | {licence(name)} |")
                continue
            dist = next((p for p in packages if label.startswith(p + "/")), None)
            rows.append(f"| {label} | `{digest}` | {licence(dist) if dist else 'not stated (a local file)'} |")
    return rows or ["| (none recorded) | | |"]


def licence(dist: str) -> str:
    """The licence an installed distribution declares (License-Expression, License, or its classifier)."""
    try:
        meta = metadata.metadata(dist)
    except metadata.PackageNotFoundError:
        return "unknown (package not installed)"
    for field in ("License-Expression", "License"):
        value = (meta.get(field) or "").strip()
        if value and value.upper() != "UNKNOWN" and "\n" not in value:
            return value
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return ", ".join(classifiers) or "not stated by the package"


def _results(found, nodes: dict) -> list[str]:
    from engine.review.metrics import stage_headlines

    rows = []
    for name, node in sorted(nodes.items()):
        if node.get("kind") not in ("evaluate", "generate") or name.endswith("[baseline]"):
            continue
        before = nodes.get(f"{name}[baseline]", {}).get("metrics", {})
        for metric in (m for m in stage_headlines(found.spec, node["kind"]) if m != "samples"):
            after = node.get("metrics", {}).get(metric)
            if isinstance(after, (int, float)):
                rows.append(f"| {name}.{metric} | {_number(before.get(metric))} | {_number(after)} |")
    if not rows:
        return ["No evaluation in the spec; add an `evaluate` section (with `baseline: true`) for numbers here."]
    return ["| metric | before fine-tuning | after |", "|---|---|---|"] + rows


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _loading(fmt: str, details: dict) -> list[str]:
    if fmt == "adapter" and details.get("base"):
        return ["from peft import AutoPeftModelForCausalLM",
                f'model = AutoPeftModelForCausalLM.from_pretrained("THIS_FOLDER")  # loads {details["base"]} first']
    if fmt == "adapter":
        return ["from peft import PeftModel",
                "base = ...  # the base model named under 'Base model' above, loaded with from_pretrained",
                'model = PeftModel.from_pretrained(base, "THIS_FOLDER")']
    if fmt == "gguf":
        return ["from transformers import AutoModelForCausalLM, AutoTokenizer",
                f'model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER", gguf_file="{details["file"]}")',
                f'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER", gguf_file="{details["file"]}")',
                f"# llama.cpp: llama-cli -m {details['file']}"]
    return ["from transformers import AutoModelForCausalLM, AutoTokenizer",
            'model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER")',
            'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")']


def _yaml(tree) -> str:
    from ruamel.yaml import YAML

    from engine.spec import thaw

    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(thaw(tree), out)
    return out.getvalue()
