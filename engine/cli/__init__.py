"""`engine` command line: one parser, and the one place that turns errors into exit codes.

Exit codes: 0 ok, 1 a stage failed, 2 a bad spec or bad usage, 130 interrupted, 143 terminated
(SIGTERM), 141 the reader of the output went away before all of it was written (`engine ... | head`,
as SIGPIPE would; every command, quietly, decided in `main` alone).
The CLI parses and renders: each handler calls one function of the application layer (engine/app/)
and prints the result it returns. It imports only engine.app, engine.errors and its own modules,
inside its handlers, so `engine validate` never pays for torch.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from engine import __version__
from engine.errors import EngineError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 0, 1, 2, 130, 141, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so staging dirs are cleaned and the reason is printed."""


def terminate_gracefully() -> None:
    """Make SIGTERM raise Terminated in the main thread (a stage may install its own meanwhile)."""
    import signal

    def _raise(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, _raise)


def command_modules() -> list:
    """The command modules, in help order; each has `register(subparsers)`."""
    from engine.cli import (cache_commands, diff_command, export_command, generate_command, report_command,
                            reproduce_commands, review_command, run_commands, spec_commands)

    return [spec_commands, run_commands, generate_command, diff_command, review_command, reproduce_commands,
            report_command, export_command, cache_commands]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors exit 2, like ours
        self.print_usage(sys.stderr)
        raise SystemExit(f"engine: error: {message}") from None

    def _print_message(self, message: str, file=None) -> None:  # argparse ignores a failed write; main() does not
        if message:
            (file or sys.stderr).write(message)


def spec_args(p: argparse.ArgumentParser, many: bool = False) -> None:
    """The SPEC argument(s) and --set, shared by every command that reads a spec."""
    if many:
        p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files to read")
    else:
        p.add_argument("spec", metavar="SPEC", help="the spec file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a spec value, e.g. --set train.learning_rate=1e-4 (repeatable; value parsed as YAML)")
    p.add_argument("--allow-outside-project", action="store_true",
                   help="let the spec read files outside its project (after symlinks); also ENGINE_ALLOW_OUTSIDE_PROJECT=1. "
                        "A spec can never allow this itself")


def store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="DIR", help="store directory (default: $ENGINE_STORE or .engine/ at the project root)")


def build_parser() -> argparse.ArgumentParser:
    from engine.cli import command_modules

    parser = _Parser(prog="engine", description="Fine-tune pretrained models from one declarative spec.")
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (never raises for a person's mistake).

    When the reader of the output leaves (`engine ... | head`: a write to stdout fails with EPIPE),
    every command stops quietly with 141, as a tool killed by SIGPIPE does; so does the exit of
    rich's Console (it raises SystemExit(1) while handling the BrokenPipeError). A command whose
    output was all written before the reader left ends as it would have (0).
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except SystemExit as exc:
        if not isinstance(exc.__context__, BrokenPipeError):
            raise
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return EXIT_USAGE
        return int(exc.code or 0)
    handler: Callable | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    from engine.app import allow_outside_project

    allow_outside_project(getattr(args, "allow_outside_project", False))  # per command, never left over
    try:
        code = int(handler(args) or EXIT_OK)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # before OSError below; main() turns it into EXIT_BROKEN_PIPE
        raise
    except Terminated:
        print("\nterminated (SIGTERM): nothing of the running stage was cached, finished stages stay cached; "
              "run the same command again to continue (training resumes from its last complete checkpoint)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EngineError as exc:
        if args.verbose or os.environ.get("ENGINE_DEBUG"):
            import traceback

            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a file that vanished or cannot be read or written, outside any stage
        if args.verbose or os.environ.get("ENGINE_DEBUG"):
            import traceback

            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; check it exists and this user may read and write it "
              f"(-v shows where it happened)", file=sys.stderr)
        return EXIT_FAILED


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry_point() -> None:
    """Console script `engine`."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_BROKEN_PIPE
    sys.exit(code)
