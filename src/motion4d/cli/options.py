"""Command-line options generated from dataclasses (a field and its docstring) and function signatures.

A field ``lambda_arap: float = 1.0`` with the docstring ``"ARAP weight ..."`` becomes ``--lambda-arap FLOAT``
whose help is the docstring and the default; nested dataclass fields are reached by their path
(``--densify.refine-every``); ``bool`` fields become ``--flag / --no-flag``; ``Literal`` fields take one of
their values; tuples take comma-separated values (``--background 1,1,1``). Each option's parsed value is
stored under its field path (``sampler.kind``) and is ``None`` when the option was not given, so presets and
saved configs keep their values for everything the command line leaves out.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import re
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Union


@dataclass(frozen=True)
class Option:
    """One generated command-line option (or positional argument)."""

    path: str
    """Field path the value belongs to ("iters", "sampler.kind", "data")."""
    flag: str
    """``--name`` as typed, or the metavar of a positional argument ("DATA")."""
    help: str
    """Help text (the field's docstring and its default)."""
    default: Any = None
    """The value when the option is not given (shown in the help)."""
    parse: Callable[[str], Any] | None = None
    """Text → value (None: a ``--flag / --no-flag`` boolean)."""
    choices: tuple | None = None
    """The allowed values, if only some are."""
    positional: bool = False
    """A positional argument."""
    required: bool = False
    """The option must be given (else a positional one is optional: it may come from a saved run)."""


def _clean(doc: str) -> str:
    """A docstring as one line of help: reST roles and literals unwrapped, whitespace collapsed."""
    doc = re.sub(r":\w+:`~?([^`]*)`", lambda m: m.group(1).rsplit(".", 1)[-1], doc)
    doc = doc.replace("``", "")
    return " ".join(doc.split())


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of dataclass ``cls`` and its bases (the string after each field), by field."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # no source (frozen app): options without help
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                    docs[node.target.id] = _clean(after.value.value)
    return docs


def _tuple_parser(elem: type, n: int | None) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            values = tuple(elem(x) for x in text.split(","))
        except ValueError:
            values = None
        if values is None or (n is not None and len(values) != n):
            count = f"{n} " if n is not None else ""
            raise argparse.ArgumentTypeError(f"expected {count}comma-separated {elem.__name__} values, got {text!r}")
        return values

    return parse


def parser_for(tp: Any) -> tuple[Callable[[str], Any] | None, tuple | None] | None:
    """(parse, choices) for a field of type ``tp``; parse is None for ``bool``; None when ``tp`` has no
    command-line form (dicts, lists, callables, ...)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return None, None
    if tp in (int, float, str):
        return tp, None
    if tp is Path:
        return str, None
    if origin is Literal:
        return type(args[0]), args
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if all(a in (str, Path) for a in rest):
            return str, None
        return parser_for(rest[0]) if len(rest) == 1 else None
    if origin is tuple and args and args[0] in (int, float, str) and all(a in (args[0], Ellipsis) for a in args):
        return _tuple_parser(args[0], None if Ellipsis in args else len(args)), None
    return None


def dataclass_type(tp: Any) -> type | None:
    """The dataclass of an annotation ``C`` or ``C | None``; None for any other."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = rest[0] if len(rest) == 1 else None
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


def _flag(path: str, aliases: Mapping[str, str]) -> str:
    return aliases.get(path, "--" + path.replace("_", "-"))


def _help(doc: str, default: Any) -> str:
    if default is None or default == ():
        return doc
    shown = ("on" if default else "off") if isinstance(default, bool) else (",".join(map(str, default)) if isinstance(default, tuple) else default)
    return f"{doc} (default: {shown})" if doc else f"default: {shown}"


def dataclass_options(cls: type, default: Any = None, *, prefix: str = "", aliases: Mapping[str, str] = {},
                      parsers: Mapping[str, Callable] = {}, positional: tuple[str, ...] = (),
                      defaults: Mapping[str, Any] = {}) -> list[Option]:  # fmt: skip
    """The options of dataclass ``cls``'s fields (nested dataclasses by path), defaults taken from the
    instance ``default`` (else the fields' own defaults, else ``defaults``, by field path). ``aliases`` /
    ``parsers``: field path → flag / text-to-value function; ``positional``: fields taken as positional
    arguments."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    options = []
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        if path in defaults:
            value = defaults[path]
        elif default is not None:
            value = getattr(default, f.name)
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = None
        if dataclasses.is_dataclass(hints[f.name]):
            options += dataclass_options(hints[f.name], value, prefix=path + ".", aliases=aliases, parsers=parsers, defaults=defaults)
            continue
        found = (parsers[path], None) if path in parsers else parser_for(hints[f.name])
        if found is None:
            continue
        pos = f.name in positional
        flag = f.name.upper() if pos else _flag(path, aliases)
        options.append(Option(path, flag, _help(docs.get(f.name, ""), value), value, found[0], found[1], positional=pos))
    return options


def signature_options(fn: Callable, helps: Mapping[str, str], *, aliases: Mapping[str, str] = {},
                      choices: Mapping[str, tuple] = {}, positional: tuple[str, ...] = ()) -> list[Option]:  # fmt: skip
    """The options of ``fn``'s parameters named in ``helps`` (their help texts); defaults from the signature,
    parameters without one are required. A parameter typed ``C`` or ``C | None``, ``C`` a dataclass, gives
    its fields' options (flat)."""
    hints, params = typing.get_type_hints(fn), inspect.signature(fn).parameters
    options = []
    for name, text in helps.items():
        if name not in params:
            continue
        p, tp = params[name], hints.get(name, str)
        default = None if p.default is inspect.Parameter.empty else p.default
        if dataclass_type(tp) is not None:
            options += dataclass_options(dataclass_type(tp), default, aliases=aliases)
            continue
        parse, allowed = parser_for(tp) or (str, None)
        pos = name in positional
        flag = name.upper() if pos else _flag(name, aliases)
        required = p.default is inspect.Parameter.empty
        options.append(Option(name, flag, _help(text, default), default, parse, choices.get(name, allowed), pos, required))
    return options


_METAVARS = {int: "INT", float: "FLOAT"}


def add_options(parser: argparse.ArgumentParser, options: list[Option]) -> None:
    """Declare ``options`` on ``parser`` (every value defaults to None: "not given")."""
    for o in options:
        text = o.help.replace("%", "%%")
        if o.positional:
            parser.add_argument(o.path, nargs=None if o.required else "?", metavar=o.flag, help=text, type=o.parse, choices=o.choices)
        elif o.parse is None:
            parser.add_argument(o.flag, dest=o.path, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            metavar = None if o.choices else _METAVARS.get(o.parse, o.path.rsplit(".", 1)[-1].upper())
            parser.add_argument(o.flag, dest=o.path, type=o.parse, choices=o.choices, required=o.required, metavar=metavar, help=text)


def given(ns: argparse.Namespace, options: list[Option]) -> dict[str, Any]:
    """{path: value} of the options given on the command line."""
    values = vars(ns)
    return {o.path: values[o.path] for o in options if values.get(o.path) is not None}


def name_options(message: str, flags: Mapping[str, str], prefix: str = "") -> str:
    """``message`` with a leading field name ("n_nodes must be >= 1") turned into its option ("--nodes ...")."""
    m = re.match(r"[A-Za-z_][\w.]*", message)
    if m is None:
        return message
    path = prefix + m.group(0) if prefix + m.group(0) in flags else m.group(0)
    return flags[path] + message[m.end() :] if path in flags else message


def with_values(obj: Any, values: Mapping[str, Any], flags: Mapping[str, str], prefix: str = "") -> Any:
    """Dataclass instance ``obj`` with the fields at ``values``' paths replaced (nested ones too); a
    ValueError of a dataclass's validation names the option instead of the field."""
    changes = {}
    for f in dataclasses.fields(obj):
        path, current = prefix + f.name, getattr(obj, f.name)
        if dataclasses.is_dataclass(current) and any(k.startswith(path + ".") for k in values):
            changes[f.name] = with_values(current, values, flags, path + ".")
        elif path in values:
            changes[f.name] = values[path]
    try:
        return dataclasses.replace(obj, **changes) if changes else obj
    except ValueError as e:
        raise ValueError(name_options(str(e), flags, prefix)) from None


def build(cls: type, values: Mapping[str, Any], flags: Mapping[str, str]) -> Any:
    """``cls(**values)``, a ValueError of its validation naming the option instead of the field."""
    try:
        return cls(**values)
    except ValueError as e:
        raise ValueError(name_options(str(e), flags)) from None
