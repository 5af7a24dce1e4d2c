"""Loading job configs: frozen dataclass trees, filled from YAML and ``key=value`` overrides.

Each job owns one dataclass tree (``CurateConfig``, ``TrainConfig``...). Its fields
are the documented knobs; ``__post_init__`` checks them. This module only knows
how to build such a tree from nested dicts, YAML files and dotted overrides.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from infra.errors import FinesiftError

T = TypeVar("T")


class ConfigError(FinesiftError, ValueError):
    """A config file, key or value a user wrote is wrong; the message says how to fix it."""


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    **fields: Any,
) -> T:
    """Build ``cls`` from an optional YAML file, then ``key=value`` overrides, then values.

    Every way of setting a knob (a YAML file, ``key=value`` on the command line, a CLI
    option, a Python caller) ends as a dotted key here: one override path.

    Args:
        cls: the job's top-level config dataclass.
        path: a YAML file whose keys mirror the dataclass tree.
        overrides: dotted assignments such as ``dedup.semantic_threshold=0.9``; values
            are parsed as YAML scalars (``true``, ``3``, ``[a, b]``).
        values: dotted keys to Python values (``{"selection.budget": 500}``), applied
            after ``overrides``; None values are skipped (an option not given).
        **fields: top-level keys, the same as ``values`` for keys without a dot.

    Raises:
        ConfigError: on an unreadable file, an unknown key or a bad value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(path)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"override {item!r} is not key=value; write e.g. dedup.fuzzy_threshold=0.8"
            )
        set_dotted(data, key.strip(), yaml.safe_load(value) if value.strip() else None)
    for key, value in {**(values or {}), **fields}.items():
        if value is not None:
            set_dotted(data, key, value)
    return from_dict(cls, data)


def with_values(cfg: T, values: Mapping[str, Any]) -> T:
    """A copy of ``cfg`` with dotted keys changed (``{"selection.budget": 5}``), checked
    again as a new config would be.

    Raises:
        ConfigError: an unknown key or a bad value.
    """
    data = to_dict(cfg)
    for key, value in values.items():
        set_dotted(data, key, value)
    return from_dict(type(cfg), data)


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a config dataclass, by field name.

    Config fields are documented by a string literal on the line after them; the CLI's
    option help and the docs come from there, so a field is described once.
    """
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def describe_field(cls: type, key: str) -> tuple[Any, str]:
    """The declared type and docstring of the field at dotted ``key`` of config ``cls``.

    Raises:
        ConfigError: no such field.
    """
    node: Any = cls
    parts = key.split(".")
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(node)
        if part not in hints:
            raise ConfigError(f"{'.'.join(parts[: i + 1])} is not a config key of {cls.__name__}")
        if i == len(parts) - 1:
            return hints[part], field_docs(node).get(part, "")
        node = hints[part]
    raise ConfigError(f"empty config key for {cls.__name__}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys to values")
    return data


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``key == "a.b"``, creating levels as needed."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {part} is a value, not a section")
    node[parts[-1]] = value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Recursively build dataclass ``cls`` from ``data``, rejecting unknown keys."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
            f"known keys here: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {exc}") from exc


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Convert a YAML value to the field's declared type where that is unambiguous."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value or {}, where + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where) if len(inner) == 1 else value
    if origin is tuple and isinstance(value, list | tuple):
        if len(args) == 2 and args[1] is Ellipsis and args[0] in (int, float):
            # Numbers given on the command line arrive as strings (--seeds 0,1).
            return tuple(_coerce(args[0], item, where) for item in value)
        return tuple(value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping such as {{key: value}}, got {value!r}")
        key_hint, value_hint = args or (Any, Any)
        return {
            _coerce(key_hint, k, f"{where} key {k!r}"): _coerce(value_hint, v, f"{where}.{k}")
            for k, v in value.items()
        }
    if hint is str and isinstance(value, datetime.date):
        return value.isoformat()  # YAML reads `since: 2024-01-01` as a date
    if hint in (int, float) and isinstance(value, bool):
        # bool is an int in Python, so `budget: true` would pass as 1 unnoticed.
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r} (a boolean)")
    if hint is float and isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 5e-3 (no dot) as a string
        except ValueError:
            raise ConfigError(f"{where} must be float, got {value!r}") from None
    if hint is float and isinstance(value, int):
        value = float(value)
    if hint is float and isinstance(value, float) and math.isnan(value):
        raise ConfigError(f"{where} must be a number, got NaN")
    if hint is int and isinstance(value, str):
        try:
            return int(value)  # a number given on the command line (--seeds 0,1)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config tree as plain dicts and lists, for logging and ``finesift.json``."""
    return dataclasses.asdict(cfg)


def check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds; used in ``__post_init__``."""
    if not condition:
        raise ConfigError(message)
