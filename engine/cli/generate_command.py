"""`engine generate SPEC PROMPT [--stage NAME]`: try a cached model on a prompt, streamed."""
from __future__ import annotations

import sys

from engine.cli import spec_args, store_arg


def register(sub) -> None:
    p = sub.add_parser("generate", help="sample from a cached model of a spec on a prompt of your own, streamed; "
                                        "writes nothing")
    spec_args(p)
    p.add_argument("prompt", help="the text the model continues")
    p.add_argument("--stage", default="train", metavar="STAGE",
                   help="whose model: train (default; a sweep names its variant, e.g. train[lr=0.001]), or model / "
                        "evaluate[baseline] for the model before fine-tuning")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="instead of the spec's generate.max_new_tokens")
    p.add_argument("--no-constrain", dest="constrain", action="store_false",
                   help="sample without the spec's generate.constrain (by default its grammar steers, as in `engine run`)")
    store_arg(p)
    p.set_defaults(handler=generate)


def generate(args) -> int:
    from engine.app.trying import generate as sample

    shown = []

    def show(text: str) -> None:  # the prompt first, once the model is loaded and writing
        if not shown:
            shown.append(sys.stdout.write(args.prompt))
        sys.stdout.write(text)
        sys.stdout.flush()

    done = sample(args.spec, args.prompt, args.stage, overrides=args.overrides, store=args.store, on_text=show,
                  max_new_tokens=args.max_new_tokens, constrain=args.constrain)
    show("\n")
    print(f"({done.stage} {done.key[:12]}: {done.tokens} tokens in {done.seconds:.1f} s; nothing written)", file=sys.stderr)
    return 0
