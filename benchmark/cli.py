"""The ``vssl`` command line (also ``python -m benchmark``).

Each subcommand lives in its own module under benchmark/commands/ and exposes
``register(subparsers)``; handlers import heavy libraries (torch) lazily so
that ``vssl --help`` and ``vssl status`` start fast. Bad input raises
UserError: one line on stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from benchmark import __version__
from benchmark.errors import UserError, one_line


def build_parser() -> argparse.ArgumentParser:
    import benchmark.commands as commands

    parser = argparse.ArgumentParser(
        prog="vssl",
        description="vssl-bench: pre-train, evaluate and compare video self-supervised methods.",
        epilog="Run `vssl COMMAND --help` for a command's options. Docs: README.md, docs/.",
    )
    parser.add_argument("--version", action="version", version=f"vssl-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"benchmark.commands.{info.name}").register(sub)
    return parser


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subcommand parser the arguments reached (`vssl bench tce` -> tce's), for its own usage line."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or getattr(args, sub.dest, None) not in sub.choices:
            return parser
        parser = sub.choices[getattr(args, sub.dest)]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # argparse would print the top-level usage; the command's own is the helpful one
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    out = getattr(args, "out", None)
    if isinstance(out, str) and any(ord(c) < 32 or ord(c) == 127 for c in out):  # a newline pasted with the path
        print(f"vssl {args.command}: error: --out {out!r} holds a control character (a newline, a tab): give a plain "
              "path", file=sys.stderr)  # fmt: skip
        return 2
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is printed escaped, not a crash
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):  # not a text stream we may reconfigure
            pass
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"vssl {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        hint = getattr(args, "on_interrupt", "")
        print(f"vssl {args.command}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130
    except (BrokenProcessPool, RuntimeError) as exc:
        if not worker_died(exc):
            raise
        hint = getattr(args, "on_interrupt", "") or "rerun the same command"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"vssl {args.command}: error: a worker process died ({first}; killed, or out of memory?): {hint}",
              file=sys.stderr)  # fmt: skip
        return 1
    except OSError as exc:  # an unwritable --out, a file where a folder belongs, a full disk: the path, one line
        import errno

        if not exc.filename and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # a write that named no file
            print(f"vssl {args.command}: error: {exc.strerror}: free some space and rerun (files already written "
                  "are whole: every write goes through a temporary file)", file=sys.stderr)  # fmt: skip
            return 2
        if not exc.filename:  # no path to name (a socket, a lost connection): a fault to report, with its traceback
            raise

        what = exc.strerror or str(exc)
        if exc.errno in (errno.EEXIST, errno.ENOTDIR) and not Path(exc.filename).is_dir():
            what = "a file (or a path through one) stands where a folder is needed"  # mkdir over a file
        print(f"vssl {args.command}: error: {what}: {exc.filename}", file=sys.stderr)
        return 2


def worker_died(exc: BaseException) -> bool:
    """A decoding or encoding worker was killed: a process pool broke, or a DataLoader worker exited."""
    return isinstance(exc, BrokenProcessPool) or str(exc).startswith("DataLoader worker (pid")


if __name__ == "__main__":
    raise SystemExit(main())
