"""Typed configs from plain dicts (YAML), with errors that quote the bad key or value.

Every model has a small dataclass config with a comment on each default; presets are instances
of it. ``from_dict`` rejects unknown keys (naming the allowed ones) and wrong types, so a typo in
a YAML file stops a run before any work is done.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from .checks import ConfigError

T = TypeVar("T")


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(hint)
        if not args:
            return True
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return len(args) == len(value) and all(_type_ok(v, a) for v, a in zip(value, args))
        return all(_type_ok(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _coerce(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config", base: T | None = None) -> T:
    """Build ``cls`` from ``data``, starting from ``base`` (a preset) when given.

    Raises ``ConfigError`` naming ``where.key`` for an unknown key or a value of the wrong type.
    """
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed keys are {names}")
    values = dataclasses.asdict(base) if base is not None else {}
    for key, value in data.items():
        hint = hints[key]
        if not _type_ok(value, hint):
            raise ConfigError(f"{where}.{key}={value!r}: expected a value of type {getattr(hint, '__name__', hint)}")
        values[key] = _coerce(value, hint)
    try:
        obj = cls(**values)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-friendly dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}
