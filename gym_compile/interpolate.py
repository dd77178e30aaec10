"""interpolate: merged tree -> every `${...}` resolved (grammar in interp_grammar.py); all failures in one pass
(worded and located by interp_diagnostics.py).

A value that is exactly one interp keeps the referenced value's type; otherwise the result is a string.
`???` marks a mandatory value: left unset, it is an error that names the override that sets it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from gym_compile.diagnostics import Diagnostic, Location, did_you_mean, shorten
from gym_compile.interp_diagnostics import MAX_CHAIN, InterpProblems
from gym_compile.interp_grammar import RESOLVERS, Call, Ref, parse
from gym_compile.interp_grammar import GrammarError as _Syntax
from gym_compile.interp_grammar import roots as _roots
from gym_compile.loader import load_value
from gym_compile.merge import Merged
from gym_compile.sourcemap import Path_

MISSING = "???"


@dataclass(frozen=True)
class Origin:
    """Where an interpolated value finally came from: env.yaml key, environment variable or config."""

    source: str  # "env_file" | "environment" | "config"
    key: str  # env.yaml key, variable name, or dotted config path
    location: Location | None


@dataclass
class Resolved:
    data: dict[str, Any]
    merged: Merged
    # path -> the final sources of every ${...} that fed the value
    origins: dict[Path_, list[Origin]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    failed: set[Path_] = field(default_factory=set)  # values left unresolved (already reported)
    referenced: set[Path_] = field(default_factory=set)  # every node some ${...} looked up

    def is_failed(self, path: Path_) -> bool:
        return any(tuple(path[:n]) in self.failed for n in range(len(path) + 1))


def resolve(
    merged: Merged, *, external_roots: bool = False, allow_missing: bool = False
) -> Resolved:
    """Resolves every string in place; failures are reported and left as written, so later
    stages can still check everything else.

    external_roots: a `${x...}` whose first name x is defined nowhere is assumed to come from
    outside (an env.yaml given at run time) and is left unresolved without a diagnostic; so is one
    whose x a file that failed to load might define. allow_missing: `???` is not an error (lint checks files meant to be
    completed by overrides)."""
    r = _Resolver(merged, external_roots, allow_missing)
    r.walk(merged.data, ())
    return Resolved(merged.data, merged, r.origins, r.problems.found, r.failed, r.referenced)


class _Resolver:
    def __init__(self, merged: Merged, external_roots: bool, allow_missing: bool) -> None:
        self.m = merged
        self.external_roots = external_roots
        self.allow_missing = allow_missing
        self.using: dict[Path_, str] = {}  # path -> the ${...} being evaluated in its value
        self.done: set[Path_] = set()
        self.stack: list[Path_] = []
        self.problems = InterpProblems(merged, self.using)
        self.failed: set[Path_] = set()
        self.origins: dict[Path_, list[Origin]] = {}
        self.referenced: set[Path_] = set()
        self.env_file = merged.env.file if merged.env else None

    # -- tree walking -------------------------------------------------------------------------
    def walk(self, node: Any, path: Path_) -> Any:
        if isinstance(node, dict):
            for k in list(node):
                node[k] = self.value_at(path + (k,), node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                node[i] = self.value_at(path + (i,), node[i])
        return node

    def value_at(self, path: Path_, value: Any) -> Any:
        if path in self.done or path in self.failed:
            return value
        if isinstance(value, (dict, list)):
            self.walk(value, path)
        elif isinstance(value, str):
            if value == MISSING:
                if not self.allow_missing:
                    self.problems.missing(path)
                self.failed.add(path)
                return value
            if "${" in value:
                value = self._resolve_string(path, value)
                self._set(path, value)
        self.done.add(path)
        return value

    def _set(self, path: Path_, value: Any) -> None:
        node: Any = self.m.data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    # -- strings ------------------------------------------------------------------------------
    def _resolve_string(self, path: Path_, text: str) -> Any:
        if path in self.stack:
            chain = self.stack[self.stack.index(path) :] + [path]
            self.problems.cycle(chain)
            self.failed.update(chain)
            raise _Failed
        if (
            len(self.stack) >= MAX_CHAIN
        ):  # each link costs several frames: stop before the stack does
            self.failed.update(self.stack)
            self.problems.too_deep(self.stack, path)
            raise _Failed
        try:
            parts = parse(text)
        except _Syntax as exc:
            self.problems.report(
                "GYM023",
                f"malformed interpolation in {shorten(text, 120)!r}: {exc}",
                path,
                hints=(
                    "write ${key.path}, ${oc.env:VAR,default} or ${oc.select:key,default}; "
                    "escape a literal as \\${",
                ),
            )
            self.failed.add(path)
            return text
        self.referenced.update(_roots(parts))  # even those a failure stops before they are reached
        self.stack.append(path)
        origins: list[Origin] = []
        try:
            values = [self._eval(p, path, origins) for p in parts]
        except _Failed:
            self.failed.add(path)
            return text
        finally:
            self.stack.pop()
        if origins:
            self.origins[path] = origins
        if len(values) == 1 and not isinstance(parts[0], str):
            return values[0]
        return "".join(_to_text(v) for v in values)

    def _eval(self, part: Any, path: Path_, origins: list[Origin]) -> Any:
        if isinstance(part, str):
            return part
        outer = self.using.get(path)
        self.using[path] = part.raw
        try:
            return self._eval_interp(part, path, origins)
        finally:
            if outer is None:
                del self.using[path]
            else:
                self.using[path] = outer

    def _eval_interp(self, part: Any, path: Path_, origins: list[Origin]) -> Any:
        if isinstance(part, Ref):
            return self._lookup(part.key, path, origins, default=_NO_DEFAULT)
        if part.name == "oc.env":
            return self._env(part, path, origins)
        if part.name == "oc.select":
            if not part.args or not part.args[0]:
                self.problems.report(
                    "GYM023", "oc.select needs a key: ${oc.select:key,default}", path
                )
                raise _Failed
            key = "".join(_to_text(self._eval(p, path, origins)) for p in part.args[0])
            default = self._arg(part.args[1], path, origins) if len(part.args) > 1 else None
            return self._lookup(key, path, origins, default=default)
        if part.name == "oc.decode":  # OmegaConf's: the argument's text read as a YAML value
            if len(part.args) != 1:
                self.problems.report(
                    "GYM023", "oc.decode takes one argument: ${oc.decode:text}", path
                )
                raise _Failed
            value = self._arg(part.args[0], path, origins)
            try:
                return load_value(value) if isinstance(value, str) else value
            except yaml.YAMLError:
                return value
        self.problems.report(
            "GYM023",
            f"unknown resolver '{part.name}'",
            path,
            hints=did_you_mean(part.name, RESOLVERS)
            or (f"known resolvers: {', '.join(RESOLVERS)}",),
        )
        raise _Failed

    def _arg(self, parts: tuple[Any, ...], path: Path_, origins: list[Origin]) -> Any:
        values = [self._eval(p, path, origins) for p in parts]
        if len(values) == 1 and not isinstance(parts[0], str):
            return values[0]
        text = "".join(_to_text(v) for v in values)
        try:  # defaults read like YAML scalars, as OmegaConf's grammar does
            value = load_value(text) if text and "${" not in text else text
        except yaml.YAMLError:
            return text
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            return float(value.replace("_", ""))  # 1e-6: a float to OmegaConf, a string to YAML 1.1
        return value

    def _env(self, call: Call, path: Path_, origins: list[Origin]) -> Any:
        if not call.args or not call.args[0]:
            self.problems.report(
                "GYM023", "oc.env needs a variable name: ${oc.env:VAR,default}", path
            )
            raise _Failed
        var = "".join(_to_text(self._eval(p, path, origins)) for p in call.args[0])
        if var in os.environ:
            origins.append(Origin("environment", var, None))
            return os.environ[var]
        if len(call.args) > 1:
            return self._arg(call.args[1], path, origins)
        self.problems.report(
            "GYM024",
            f"environment variable {var} is not set",
            path,
            hints=(
                f"export {var}=... before compiling, or give a default: ${{oc.env:{var},default}}",
            ),
        )
        raise _Failed

    def _lookup(self, key: str, path: Path_, origins: list[Origin], default: Any) -> Any:
        target = self._key_path(key, path)
        if target:
            self.referenced.add(target[:1])
        node: Any = self.m.data
        for i, part in enumerate(target):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif (
                isinstance(node, list)
                and isinstance(part, str)
                and part.isdigit()
                and int(part) < len(node)
            ):
                node = node[int(part)]
            else:
                if default is not _NO_DEFAULT:
                    return default
                if i == 0 and (self.external_roots or self.m.could_define(target[0])):
                    raise _Failed  # supplied from outside: nothing to check here
                self.problems.undefined(key, target, i, path)
                raise _Failed
        found = tuple(int(p) if p.isdigit() else p for p in target)
        value = self.value_at(found, node)
        if found in self.failed:
            if self._is_missing(found) and not self.allow_missing:
                self.problems.refers_to_missing(key, found, path)
            raise _Failed
        loc = self.m.source.at(found)
        inherited = self.origins.get(found)
        if inherited:
            origins.extend(inherited)
        elif self.env_file and loc is not None and loc.file == self.env_file and len(found) == 1:
            origins.append(Origin("env_file", str(found[0]), loc))
        else:
            origins.append(Origin("config", ".".join(map(str, found)), loc))
        return value

    def _key_path(self, key: str, path: Path_) -> tuple[str, ...]:
        dots = len(key) - len(key.lstrip("."))
        parts = tuple(p for p in key[dots:].split(".") if p)
        if not dots:
            return parts
        base = path[:-1][: max(0, len(path) - dots)]
        return tuple(map(str, base)) + parts

    def _is_missing(self, target: Path_) -> bool:
        node: Any = self.m.data
        for part in target:
            node = node[part]
        return node == MISSING


#: OmegaConf's grammar reads these as floats where YAML 1.1 wants a dot (1e-6, 5E+3)
_EXPONENT_FLOAT = re.compile(r"[+-]?(\d[\d_]*|\d[\d_]*\.\d*|\.\d+)[eE][+-]?\d+")


class _Failed(Exception):
    """A reported failure: unwinds the current value without a second message."""


class _NoDefault:
    pass


_NO_DEFAULT: Any = _NoDefault()


def _to_text(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value)
    return str(value)
