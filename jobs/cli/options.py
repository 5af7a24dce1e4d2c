"""Commands generated from config dataclasses: a config field is written once.

A job command is declared by its config class, the job function, and which fields get an
option of their own (:class:`Opt`): the option's type and help come from the field's type
and docstring. Every other field is reachable as ``key=value`` on the command line. The
command, ``finesift.<job>(...)`` in Python and the pipeline all end in
:func:`infra.config.load_config` with dotted keys.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from infra.config import ConfigError, describe_field, load_config


@dataclass(frozen=True)
class Opt:
    """A config field given its own command-line option."""

    key: str
    """Dotted config key, e.g. ``selection.budget``."""
    flags: tuple[str, ...] = ()
    """Option spellings; by default ``--`` and the key's last part with dashes
    (``--budget``); a bool gets ``--x/--no-x``."""
    help: str | None = None
    """Help text; by default the field's docstring."""
    comma: bool = False
    """A list field given as one comma-separated value (``--models base,smol``)."""

    @property
    def name(self) -> str:
        """The Python keyword for this option (``finesift.curate(budget=...)``)."""
        return self.key.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Positional:
    """The command's positional arguments: a list field, then ``key=value`` overrides."""

    key: str
    metavar: str
    help: str


def _option_type(hint: Any) -> tuple[Any, bool]:
    """(the type typer parses, whether it is a list) for a field's declared type."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = inner[0] if len(inner) == 1 else str
    if typing.get_origin(hint) in (tuple, list):
        return str, True
    return (hint if hint in (int, float, str, bool) else str), False


def _parameter(cls: type, opt: Opt) -> inspect.Parameter:
    hint, doc = describe_field(cls, opt.key)
    kind, many = _option_type(hint)
    flag = "--" + opt.name.replace("_", "-")
    flags = opt.flags or ((f"{flag}/--no-{flag[2:]}",) if kind is bool else (flag,))
    # Escaped: typer renders help as rich markup, which would drop a docstring's brackets
    # ('finesift[vllm]', '[q_proj, v_proj]') as if they were style tags.
    annotation = Annotated[
        (list[str] if many and not opt.comma else kind) | None,
        typer.Option(*flags, help=escape(opt.help or doc), show_default=False),
    ]
    return inspect.Parameter(
        opt.key.replace(".", "__"),
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=annotation,
    )


def option_values(cls: type, options: Sequence[Opt], given: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys to values for the options given (by key or by Python name)."""
    values: dict[str, Any] = {}
    for opt in options:
        value = given.get(opt.key, given.get(opt.name))
        if value is None:
            continue
        hint, _ = describe_field(cls, opt.key)
        if _option_type(hint)[1]:
            items = [value] if isinstance(value, str) else list(value)
            if opt.comma:  # Python callers may pass numbers (seeds=(0, 1)): only split text
                items = [
                    part.strip() if isinstance(part, str) else part
                    for item in items
                    for part in (item.split(",") if isinstance(item, str) else [item])
                ]
            value = tuple(item for item in items if item != "")
        values[opt.key] = value
    return values


def split_overrides(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Typer sees one variadic list: ``key=value`` items are overrides, the rest positional.

    A URI or an existing path is positional even with a ``=`` in it
    (``s3://bucket/date=2024-01-01/``).
    """
    from infra.storage import is_uri

    positional = [a for a in args if "=" not in a or is_uri(a) or Path(a).exists()]
    return positional, [a for a in args if a not in positional]


def build_config(
    cls: type,
    *,
    config: Path | str | None,
    args: Sequence[str],
    options: Sequence[Opt],
    given: Mapping[str, Any],
    positional: Positional | None = None,
    values: Mapping[str, Any] | None = None,
) -> Any:
    """The config a command or an API call describes: YAML, then ``key=value``, then
    ``values``, then options.

    Raises:
        ConfigError: a bad key or value, or positional arguments the command takes none of.
    """
    items, overrides = split_overrides(args)
    values = {**(values or {}), **option_values(cls, options, given)}
    if positional is not None:
        if items:
            values[positional.key] = tuple(items)
    elif items:
        raise ConfigError(
            f"unexpected argument(s) {' '.join(items)}: settings are key=value, e.g. "
            "optim.learning_rate=0.0001 (see --help)"
        )
    return load_config(cls, config, overrides, values)


@dataclass(frozen=True)
class JobSpec:
    """A job's config class and the fields its command (and Python function) name."""

    cls: type
    options: tuple[Opt, ...]
    positional: Positional | None = None

    def config(
        self,
        *,
        config: Path | str | None = None,
        args: Sequence[str] = (),
        values: Mapping[str, Any] | None = None,
        **given: Any,
    ) -> Any:
        """The config for options given by name (``budget=500``) or dotted key, a YAML
        file, ``key=value`` strings in ``args`` and dotted keys to values in ``values``.

        Raises:
            ConfigError: an option this job does not have, or a bad value.
        """
        known = {o.name for o in self.options} | {o.key for o in self.options}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(o.name for o in self.options))}; any other setting goes "
                "in overrides as key=value"
            )
        return build_config(
            self.cls,
            config=config,
            args=args,
            options=self.options,
            given=given,
            positional=self.positional,
            values=values,
        )


def config_command(spec: JobSpec, run: Callable[[Any], object], *, doc: str) -> Callable[..., None]:
    """A typer command for ``spec`` that builds the config and calls ``run(cfg)``.

    Its options are generated from ``spec.options`` (type and help from the dataclass),
    plus ``--config/-c`` for a YAML file and trailing ``key=value`` overrides of any field.
    """
    cls, options, positional = spec.cls, spec.options, spec.positional
    params = [_parameter(cls, opt) for opt in options]
    params.append(
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option("--config", "-c", help="YAML config file (see configs/)."),
            ],
        )
    )
    arg_help = "key=value settings of any config field (see configs/ and --config)."
    params.insert(
        0,
        inspect.Parameter(
            "args",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[
                list[str] | None,
                typer.Argument(
                    help=f"{positional.help} Then {arg_help}" if positional else arg_help,
                    metavar=f"{positional.metavar} [KEY=VALUE...]"
                    if positional
                    else "[KEY=VALUE...]",
                    show_default=False,
                ),
            ],
        ),
    )

    def command(**kwargs: Any) -> None:
        given = {key.replace("__", "."): value for key, value in kwargs.items()}
        config = given.pop("config")
        args = given.pop("args") or []
        run(spec.config(config=config, args=args, **given))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = inspect.cleandoc(doc)
    return command
