"""Parses Hydra-style command-line overrides (`+a.b=1`, `a.b=[x,y]`, `++k=v`, `~k`) into values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from gym_compile.diagnostics import CMDLINE, CompileError, Diagnostic, Location
from gym_compile.loader import load_value

_KEY = re.compile(
    r"^(?P<prefix>\+\+|\+|~)?(?P<key>[A-Za-z_][\w\-]*(?:\.[\w\-]+)*)(?:(?P<eq>=)(?P<value>.*))?$",
    re.S,
)


@dataclass(frozen=True)
class Override:
    op: Literal["set", "delete"]
    path: tuple[str, ...]
    value: Any
    text: str

    @property
    def location(self) -> Location:
        return Location(CMDLINE, label=self.text)


def is_override(arg: str) -> bool:
    """Config files are paths; anything with '=' or a leading '+'/'~' is an override."""
    return "=" in arg or arg.startswith(("+", "~"))


def parse_overrides(args: list[str]) -> list[Override]:
    """All malformed overrides are reported together."""
    out, problems = split_overrides(args)
    if problems:
        raise CompileError(problems)
    return out


def split_overrides(args: list[str]) -> tuple[list[Override], list[Diagnostic]]:
    """The well-formed overrides and the problems of the others, so one typo does not hide the rest."""
    out: list[Override] = []
    problems: list[Diagnostic] = []
    for text in args:
        try:
            out.append(parse_override(text))
        except CompileError as exc:
            problems.extend(exc.diagnostics)
    return out, problems


def parse_override(text: str) -> Override:
    m = _KEY.match(text.strip())
    loc = Location(CMDLINE, label=text)
    if not m:
        raise CompileError(
            [
                Diagnostic(
                    "GYM010",
                    f"malformed override '{text}'",
                    loc,
                    hints=(
                        'write +key.subkey=value (e.g. +limit=10 or "+config_paths=[a.yaml,b.yaml]"); '
                        "~key deletes a key",
                    ),
                )
            ]
        )
    prefix, key, eq, raw = m.group("prefix"), m.group("key"), m.group("eq"), m.group("value")
    path = tuple(key.split("."))
    if prefix == "~":
        return Override("delete", path, None, text)
    if not eq:
        raise CompileError(
            [
                Diagnostic(
                    "GYM010",
                    f"override '{text}' has no value",
                    loc,
                    hints=(f"write {prefix or '+'}{key}=VALUE",),
                )
            ]
        )
    return Override("set", path, _parse_value(raw, loc), text)


def _parse_value(raw: str, loc: Location) -> Any:
    """Values read like YAML scalars and flow collections, as Hydra's do; '' stays a string."""
    if raw.strip() == "":
        return ""
    if (
        raw.startswith(("'", '"'))
        and raw.endswith(raw[0])
        and len(raw) >= 2
        and raw.count(raw[0]) == 2
    ):
        return raw[1:-1]
    try:
        value = load_value(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "cannot parse the value"
        raise CompileError(
            [
                Diagnostic(
                    "GYM010",
                    f"malformed override value: {problem}",
                    loc,
                    hints=(
                        "lists are [a,b], maps are {k: v}; quote a value that has special characters",
                    ),
                )
            ]
        ) from None
    if isinstance(value, str) and value != raw.strip() and "${" in raw:
        return raw.strip()
    return value
