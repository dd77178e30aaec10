"""explain: one key of a config -> its final value (secrets masked), where it came from, its ${...} chain."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile import schema_catalog as catalog
from gym_compile.compiler import check
from gym_compile.diagnostics import CMDLINE, Diagnostic, did_you_mean, parse_json_path
from gym_compile.interp_grammar import Call, GrammarError, Ref, parse
from gym_compile.merge import Merged
from gym_compile.options import Options
from gym_compile.secret_paths import mask_override, secret_named_override
from gym_compile.secretscan import MASK, looks_secret, secret_key_name
from gym_compile.sourcemap import ABSENT, value_at
from gym_compile.validate import Server, Validated

Path_ = tuple[Any, ...]
MAX_CHAIN = 20


@dataclass
class Explanation:
    found: bool
    lines: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def parse_key(key: str) -> Path_:
    """`a.b.c`, `$.a.b[0].c` (as diagnostics print it) or `a.b.0.c`."""
    return parse_json_path(key)


def explain_key(
    key: str, configs: list[Path], overrides: list[str], *, env: Path | None = None
) -> Explanation:
    checked = check(
        configs, overrides, Options(env=env, env_required=env is not None), keep_raw=True
    )
    return _Explainer(checked.validated, checked.raw, parse_key(key)).run(key, checked.diagnostics)


class _Explainer:
    def __init__(self, v: Validated, raw: dict[str, Any], path: Path_) -> None:
        self.v, self.raw, self.path = v, raw, path
        self.merged: Merged = v.resolved.merged
        self.server = self._server()
        self.masking = False  # the key is a secret: every value on its ${...} chain is shown as ***

    def _server(self) -> Server | None:
        s = self.v.servers.get(self.path[0]) if self.path else None
        return s if s is not None and self.path[: len(s.source_path)] == s.source_path else None

    def run(self, key: str, diagnostics: list[Diagnostic]) -> Explanation:
        written, final = self._written_path(), self._final()
        if final is ABSENT:
            return Explanation(
                False, [f"{key} is not set in this config"] + self._suggest(), diagnostics
            )
        self.masking = (
            final is not None
            and not isinstance(final, (dict, list))
            and (self._secret(self.path, final))
        )
        out = [f"{'.'.join(map(str, self.path))} = {self._show(final, self.path)}"]
        if isinstance(final, (dict, list)):
            out += self._leaves(final, self.path)
            return Explanation(True, out, diagnostics)
        loc = self.merged.source.at(written) if value_at(self.raw, written) is not ABSENT else None
        raw_value = value_at(self.raw, written)
        if raw_value is ABSENT:
            impl = (
                f"{self.server.type}/{self.server.implementation}"
                if self.server
                else "the settings"
            )
            out.append(f"  from: default of {impl} (schema)")
        else:
            out.append(f"  from: {self._origin(loc)}")
            out += [f"  through: {n.message} ({n.location})" for n in self._through(written)]
        if isinstance(raw_value, str) and "${" in raw_value:
            out.append(f"  written: {raw_value}")
            out += self._chain(raw_value, written, "    ", 0)
        out += self._earlier(written, loc)
        return Explanation(True, out, diagnostics)

    def _written_path(self) -> Path_:
        """Alias-aware: asking for base_url finds openai_base_url as written, and vice versa."""
        s = self.server
        if s is None or len(self.path) <= len(s.source_path):
            return self.path
        rest = self.path[len(s.source_path) :]
        first = s.renamed.get(rest[0], rest[0])
        return s.source_path + (first,) + rest[1:]

    def _final(self) -> Any:
        s = self.server
        if s is not None and len(self.path) > len(s.source_path):
            rest = self.path[len(s.source_path) :]
            aliases = s.schema.get("x-aliases", {})
            rest = (aliases.get(rest[0], rest[0]),) + rest[1:]
            value = value_at(s.config, rest)
            if value is not ABSENT:
                return value
        value = value_at(self.v.resolved.data, self.path)
        if value is ABSENT and s is None and len(self.path) == 1:  # a setting left unset
            setting = (
                catalog.validator("globals.schema.json").schema["properties"].get(self.path[0])
            )
            return setting["default"] if setting and "default" in setting else ABSENT
        return value

    def _secret(self, path: Path_, value: Any) -> bool:
        if looks_secret(value) or any(secret_key_name(p) for p in path[-1:]):
            return True
        s = self.server
        if (
            s is not None
            and path[: len(s.source_path)] == s.source_path
            and len(path) > len(s.source_path)
        ):
            schema = s.schema
            rel = path[len(s.source_path) :]
            rel = (catalog_canonical(schema, rel[0]),) + rel[1:]
            return any(
                flag and r == rel for r, _, flag in catalog.marked(schema, s.config, "writeOnly")
            )
        return False

    def _show(self, value: Any, path: Path_) -> str:
        if isinstance(value, (dict, list)):
            return "{...}" if isinstance(value, dict) else f"[{len(value)} items]"
        if value is not None and (self.masking or self._secret(path, value)):
            return MASK
        return json.dumps(value)

    def _leaves(self, node: Any, path: Path_) -> list[str]:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        out: list[str] = []
        for k, sub in items:
            here = path + (k,)
            if isinstance(sub, (dict, list)) and sub:
                out += self._leaves(sub, here)
                continue
            loc = self.merged.source.at(here) if value_at(self.raw, here) is not ABSENT else None
            where = self._origin(loc) if loc else "default (schema)"
            where += "".join(f"; {n.message} ({n.location})" for n in self._through(here))
            out.append(
                f"  {'.'.join(map(str, here[len(self.path) :]))} = {self._show(sub, here)}   ({where})"
            )
        return out

    def _through(self, path: Path_) -> list[Any]:
        """The directives (_inherit_from, _copy) a value came through, outermost first."""
        notes = (a.note(path) for a in self.merged.directives)
        return [n for n in notes if n is not None]

    def _origin(self, loc: Any) -> str:
        if loc is None:
            return "unknown"
        if loc.file == CMDLINE and (self.masking or secret_named_override(loc.label)):
            loc = dataclasses.replace(loc, label=mask_override(loc.label))
        env = self.merged.env
        return f"{loc} (env file)" if env is not None and loc.file == env.file else str(loc)

    def _chain(self, text: str, path: Path_, indent: str, depth: int) -> list[str]:
        if depth > MAX_CHAIN:
            return [f"{indent}... (chain too long or cyclic)"]
        try:
            parts = parse(text)
        except GrammarError:  # the interpolate stage has reported it
            return [f"{indent}(malformed interpolation)"]
        out: list[str] = []
        for part in parts:
            if isinstance(part, Ref):
                out += self._ref(part.raw, part.key, path, indent, depth)
            elif isinstance(part, Call) and part.name == "oc.env" and part.args:
                var = "".join(p for p in part.args[0] if isinstance(p, str))
                shown = (
                    MASK
                    if self.masking or secret_key_name(var) or looks_secret(os.environ.get(var))
                    else json.dumps(os.environ.get(var))
                )
                out.append(
                    f"{indent}{part.raw} -> environment variable {var} = "
                    + (shown if var in os.environ else "(not set; the default applies)")
                )
            elif isinstance(part, Call) and part.name == "oc.select" and part.args:
                key = "".join(p for p in part.args[0] if isinstance(p, str))
                out += self._ref(part.raw, key, path, indent, depth)
        return out

    def _ref(self, raw: str, key: str, path: Path_, indent: str, depth: int) -> list[str]:
        dots = len(key) - len(key.lstrip("."))
        target: Path_ = tuple(key[dots:].split("."))
        if dots:
            target = tuple(path[:-1][: max(0, len(path) - dots)]) + target
        target = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in target)
        raw_value = value_at(self.raw, target)
        if raw_value is ABSENT:
            return [f"{indent}{raw} -> {'.'.join(map(str, target))} is not defined"]
        final = value_at(self.v.resolved.data, target)
        loc = self.merged.source.at(target)
        out = [
            f"{indent}{raw} -> {'.'.join(map(str, target))} = {self._show(final, target)}   ({self._origin(loc)})"
        ]
        if isinstance(raw_value, str) and "${" in raw_value:
            out += self._chain(raw_value, target, indent + "  ", depth + 1)
        return out

    def _earlier(self, path: Path_, winner: Any) -> list[str]:
        """Values of the same key in files merged earlier: what the final value overrode."""
        out: list[str] = []
        for doc in self.merged.configs + ([self.merged.env] if self.merged.env else []):
            value = value_at(doc.data, path)
            loc = doc.source.at(path)
            if value is not ABSENT and loc is not None and loc != winner:
                out.append(f"    {loc}: {self._show(value, path)}")
        return ["  earlier values (overridden):"] + out if out else []

    def _suggest(self) -> list[str]:
        node: Any = self.v.resolved.data
        for i, part in enumerate(self.path):
            nxt = value_at(node, (part,))
            if nxt is ABSENT:
                where = ".".join(map(str, self.path[:i])) or "the top level"
                if isinstance(node, list):
                    return [f"  hint: {where} is a list of {len(node)} item(s)"]
                if not isinstance(node, dict):
                    return [f"  hint: {where} is a value, not a mapping"]
                keys = [str(k) for k in node]
                hints = did_you_mean(str(part), keys)
                return [f"  hint: {h}" for h in hints] + [
                    f"  hint: keys at {where}: {', '.join(keys[:20])}"
                ]
            node = nxt
        return []


def catalog_canonical(schema: dict[str, Any], key: Any) -> Any:
    return schema.get("x-aliases", {}).get(key, key)
