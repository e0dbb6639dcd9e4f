"""Dataclass configs from JSON dicts, with their keys and value types checked against the fields.

:func:`from_config_dict` is the inverse of ``dataclasses.asdict`` for the field types configs use: ``bool``,
``int``, ``float``, ``str``, ``X | None``, ``tuple[X, ...]`` / ``tuple[X, Y, Z]``, ``Literal[...]`` and nested
dataclasses (other annotations pass through unchecked). JSON integers are accepted where a float is
expected, integral floats where an int is; lists where a tuple is. An unknown key or a mistyped value is a
ValueError naming the key (the reader of the file adds the file's name).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_config_dict(cls: type[T], d: object, where: str = "") -> T:
    """An instance of dataclass ``cls`` with the values of ``d`` (missing keys keep their defaults).

    ``where`` prefixes the key names in errors (``"densify."``).
    """
    if not isinstance(d, dict):
        raise ValueError(f"{where.rstrip('.') or cls.__name__}: expected an object of {cls.__name__} fields, got {type(d).__name__}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {', '.join(where + str(k) for k in unknown)}")
    return cls(**{k: _value(hints[k], v, where + k) for k, v in d.items()})


def _mistyped(key: str, expected: str, value: object) -> ValueError:
    return ValueError(f"{key}: expected {expected}, got {type(value).__name__} {value!r}")


def _value(hint: Any, value: object, key: str) -> Any:
    """``value`` checked against (and converted to) the annotation ``hint``; ``key`` names it in errors."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_config_dict(hint, value, key + ".")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for a in options:
            try:
                return _value(a, value, key)
            except ValueError as e:
                errors.append(e)
        raise errors[0] if len(errors) == 1 else _mistyped(key, " or ".join(getattr(a, "__name__", str(a)) for a in args), value)
    if origin is Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            raise ValueError(f"{key}: expected one of {', '.join(repr(a) for a in args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _mistyped(key, "a list", value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if args and len(value) != len(args):
            raise ValueError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_value(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))) if args else tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise _mistyped(key, "true or false", value)
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _mistyped(key, "an integer", value)
        return value
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise _mistyped(key, "a finite number", value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _mistyped(key, "a string", value)
        return value
    return value
