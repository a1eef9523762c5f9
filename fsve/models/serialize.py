"""Plain-dict round trips of (nested) frozen dataclass configs, as stored in checkpoints.

``config_to_dict`` / ``config_from_dict`` work for any (nested) frozen dataclass of ints, floats,
bools, strings and tuples. Keys a dataclass does not know raise ``ValueError`` naming the key;
missing keys take the field's default. Nothing in this module imports torch.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["config_from_dict", "config_to_dict"]

C = TypeVar("C")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A (nested) dataclass config as plain Python values: dicts, lists, numbers, strings."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise ValueError(f"expected a dataclass instance, got {type(cfg).__name__}")

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    return plain(cfg)


def config_from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
    """Rebuild dataclass ``cls`` from :func:`config_to_dict` output; unknown keys raise.

    Nested dataclass fields take nested dicts; tuple fields take lists or tuples; values are
    type-checked against the field annotations (an int is accepted for a float).
    """
    return _from_dict(cls, d, "")


def _from_dict(cls: type[C], d: Any, prefix: str) -> C:
    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        raise ValueError(f"expected a dataclass type, got {cls!r}")
    if not isinstance(d, Mapping):
        where = repr(prefix.rstrip(".")) if prefix else cls.__name__
        raise ValueError(f"config key {where}: expected a dict, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in d:
        if key not in names:
            raise ValueError(
                f"unknown config key {prefix + str(key)!r} for {cls.__name__};"
                f" known: {sorted(names)}"
            )
    kwargs = {key: _coerce(hints[key], value, f"{prefix}{key}") for key, value in d.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _from_dict(hint, value, f"{key}.")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"config key {key!r}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ValueError(f"config key {key!r}: expected {len(args)} items, got {value!r}")
        return tuple(
            _coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, key)
            except ValueError:
                continue
        raise ValueError(f"config key {key!r}: {value!r} matches none of {hint}")
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config key {key!r}: expected a bool, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key {key!r}: expected an int, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"config key {key!r}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r}: expected a string, got {value!r}")
        return value
    return value
