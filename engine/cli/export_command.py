"""`engine export SPEC --to DIR [--format hf|adapter|gguf]`: a trained model out of the store."""
from __future__ import annotations

from engine.cli import spec_args, store_arg


def register(sub) -> None:
    p = sub.add_parser("export", help="write a stage's trained model to a folder with a model card: "
                                      "a save_pretrained folder, the LoRA adapter alone, or a GGUF file")
    spec_args(p)
    p.add_argument("--to", required=True, metavar="DIR", help="the folder to write (refused if it is not empty, "
                                                               "unless --force)")
    p.add_argument("--format", default="hf", choices=("hf", "adapter", "gguf"),
                   help="hf: the model (LoRA merged in) with its tokenizer (default); adapter: the LoRA adapter "
                        "alone; gguf: one .gguf file for llama.cpp (llama-family models)")
    p.add_argument("--gguf-type", default="f16", choices=("f16", "bf16", "q8_0", "f32"),
                   help="weight type of --format gguf (default f16; q8_0 is about half the size)")
    p.add_argument("--stage", default="train", metavar="STAGE",
                   help="the stage whose model to export (default train; a sweep names its variant, e.g. train[lr=0.001])")
    p.add_argument("--force", action="store_true", help="replace a folder that is not empty")
    store_arg(p)
    p.set_defaults(handler=export)


def export(args) -> int:
    from rich.console import Console

    from engine.app import display_name
    from engine.app.outputs import export as write

    with Console(stderr=True).status(f"exporting {args.stage} as {args.format}"):
        done = write(args.spec, args.to, args.format, args.stage, overrides=args.overrides, force=args.force,
                     gguf_type=args.gguf_type, store=args.store)
    print(f"exported {done.stage} ({done.key[:12]}) as {done.format} to {display_name(done.folder)}: "
          + ", ".join(done.files))
    return 0
