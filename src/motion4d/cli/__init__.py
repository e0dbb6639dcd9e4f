"""The ``motion4d`` command: parse arguments, build a config, call one pipeline.

    motion4d fit3d DATA --out RUN [--preset default] [--iters N] ...   fit static 3D Gaussians
    motion4d fit3d --demo --out RUN                                    ... to the built-in demo scene
    motion4d fit3d --out RUN --resume                                  continue a killed run
    motion4d reconstruct DATA --out RUN [--model rotor4d|deform] ...    fit animated (4D) Gaussians to multi-view video
    motion4d reconstruct --demo --out RUN                              ... to the built-in moving demo scene
    motion4d evaluate RUN [--data DATA] [--split test]                 metrics JSON on stdout (any run, .m4d files)
    motion4d render RUN --out FILE.mp4|.gif [--orbit] [--view I]       a video over time
    motion4d export RUN --format ply-sequence|m4d|glb --out PATH       per-frame 3DGS PLYs, one 4D file, or an animated glTF
    motion4d export RUN --format splatv|html --out FILE               web 4D Gaussians, or a player page that opens from disk
    motion4d view RUN|FILE [--port P] [--no-browser]                   the web player on 127.0.0.1 (run, .m4d, .splatv, .glb)
    motion4d animate ASSET --driving DATA --out RUN                    animate a static mesh with a multi-view driving video
    motion4d dataset from-gltf ASSET --out DATA [--views N ...]        render an animated glTF into a multi-view video dataset
    motion4d dataset synth --out DATA --n N [--seed S] [--captions F]  the captioned synthetic multi-view video dataset
    motion4d train-prior DATA --out RUN [--resume]                     train the multi-view video diffusion prior
    motion4d text-to-4d "PROMPT" --out RUN [--seed S] [--motion-scale]  text → 4D with the shipped (or --prior) prior
    motion4d demo [--out RUN] [--prompt P]                             text → 4D on the built-in prompt, shipped prior

Every option of a training command comes from a field of its config or inputs dataclass (default, help
and range written there; see :mod:`motion4d.cli.commands` for the table of commands). Logs go to stderr;
stdout carries only results (JSON). User errors print one ``error: ...`` line on stderr and exit with
status 2; an interrupt exits with 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from motion4d.cli.commands import COMMANDS, Group, Pipeline, Tool

log = logging.getLogger("motion4d")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):  # one line, no usage dump
        raise _UsageError(message)


def _selected(argv: list[str]) -> list[str]:
    """The command words of ``argv`` (``["fit3d"]``, ``["dataset", "from-gltf"]``): the words before the
    first option that takes a value; only their parsers are built (and their modules imported)."""
    words = []
    for arg in argv:
        if arg.startswith("-"):
            if words:
                break
            continue
        words.append(arg)
        if not isinstance(COMMANDS.get(words[0]), Group) or len(words) == 2:
            break
    return words


def _add_output_flags(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="warnings and errors only: no progress bars, no summary")
    parser.add_argument("--json", action="store_true", default=default, help="for scripts: only the JSON result on stdout (no progress bars or summary)")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser of ``motion4d``, with the options of the command ``argv`` names (the others: names and help)."""
    words = _selected(argv)
    p = _Parser(prog="motion4d", description="Text, images, video or a static asset to animated 3D Gaussians (4D), on CPU or GPU.")
    _add_output_flags(p, False)
    common = _Parser(add_help=False)
    _add_output_flags(common, argparse.SUPPRESS)  # also accepted after the command, without resetting the ones before it
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, row in COMMANDS.items():
        parser = sub.add_parser(name, help=row.help, description=row.help, parents=[] if isinstance(row, Group) else [common])
        if isinstance(row, Group):
            inner = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND", parser_class=_Parser)
            for sub_name, sub_row in row.commands.items():
                sub_parser = inner.add_parser(sub_name, help=sub_row.help, description=sub_row.help, parents=[common])
                if words[:2] == [name, sub_name]:
                    sub_row.add_to(sub_parser)
        elif words[:1] == [name]:
            row.add_to(parser)
    return p


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    root = logging.getLogger("motion4d")
    root.setLevel(level)
    if not any(getattr(h, "_motion4d", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        handler._motion4d = True
        root.addHandler(handler)
    for h in root.handlers:
        if getattr(h, "_motion4d", False):
            h.stream = sys.stderr  # follow redirection (tests capture stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``motion4d`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except _UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    quiet = args.quiet or args.json
    _setup_logging(args.verbose, quiet)
    from motion4d.progress import NO_PROGRESS

    saved = os.environ.get(NO_PROGRESS)
    if quiet:
        os.environ[NO_PROGRESS] = "1"
    try:
        return _run(args, quiet)
    finally:
        if saved is None:
            os.environ.pop(NO_PROGRESS, None)
        else:
            os.environ[NO_PROGRESS] = saved


def _run(args: argparse.Namespace, quiet: bool) -> int:
    from motion4d.errors import DataError

    row: Pipeline | Tool | Group = COMMANDS[args.command]
    name = args.command
    if isinstance(row, Group):
        row, name = row.commands[args.subcommand], f"{name} {args.subcommand}"
    try:
        result = row.main(name, args)
        if not quiet and isinstance(result, dict):
            from motion4d.cli.summary import summary_table

            run = getattr(args, "out", None) if isinstance(row, Pipeline) else None
            print(summary_table(name, result, None if run is None else Path(run)), file=sys.stderr)
        print(json.dumps(result, default=str))
        return 0
    except (DataError, ValueError, FileNotFoundError, NotADirectoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (resume with --resume)", file=sys.stderr)
        return 130
