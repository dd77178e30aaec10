"""Finds secrets written into config files, and masks secret-looking text wherever it is shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import CMDLINE, Diagnostic, Location, json_path
from gym_compile.secretshape import (
    CREDENTIAL_HEADERS,
    HEADER_FIELDS,
    MASK,
    SECRET_KEY,
    SECRET_PATTERNS,
    credential_header,
    find_secret,
    looks_secret,
    mask_text,
    secret_key_name,
)
from gym_compile.sourcemap import locate

if TYPE_CHECKING:  # validate imports this module; the type is only needed for hints
    from gym_compile.validate import Validated

# The shapes and names live in secretshape.py (a leaf: validate needs them too); re-exported here.
__all__ = [
    "CREDENTIAL_HEADERS",
    "HEADER_FIELDS",
    "MASK",
    "SECRET_KEY",
    "SECRET_PATTERNS",
    "credential_header",
    "find_secret",
    "looks_secret",
    "mask_text",
    "secret_key_name",
]


# `key: value` on a source line: a block mapping line, or a pair inside a flow mapping `{...}`.
_BLOCK_PAIR = re.compile(
    r"^(?P<head>\s*(?:-\s+)?(?P<q>['\"]?)(?P<key>[^'\"#:{}\[\],\s][^'\"#:{}\[\],]*)(?P=q)\s*:\s+)(?P<value>\S.*)$"
)
_FLOW_PAIR = re.compile(
    r"(?P<head>[{,]\s*(?P<q>['\"]?)(?P<key>[\w.\-]+)(?P=q)\s*:\s+)(?P<value>[^,}]+)"
)
_ONLY_REFS = re.compile(r"^['\"]?(\$\{[^}]*\}\s*)+['\"]?$")


def mask_line(text: str) -> str:
    """A source line as diagnostics show it: credentials masked, and the value of a secret-named key
    (`policy_api_key: x`, `{hf_token: x}`) masked whatever it looks like, unless it is only ${...}
    references (names, which the caret may point at) or credential-shaped (masked keeping its
    prefix, `sk-***`, like any credential)."""

    def masked(m: re.Match[str]) -> str:
        value = m.group("value").strip()
        if (
            secret_key_name(m.group("key").strip())
            and not _ONLY_REFS.match(value)
            and find_secret(value) is None
        ):
            return m.group("head") + MASK
        return m.group(0)

    text = _BLOCK_PAIR.sub(masked, text, count=1)
    return mask_text(_FLOW_PAIR.sub(masked, text))


def check_literals(v: Validated) -> None:
    """Warns (GYM060) about every secret-looking literal in a config file, and every literal
    in a field the schema marks writeOnly: config files get committed; env.yaml does not."""
    seen: set[tuple[str, int]] = set()
    for doc in v.resolved.merged.configs:
        for path, value in _strings(doc.data, ()):
            match = find_secret(value)
            if match is None or path[-1:] == ("entrypoint",):
                continue
            loc = locate(doc.text, doc.source.at(path), match.group(0))
            _warn(
                v,
                loc,
                path,
                f"a secret-looking value ({match.group('prefix').strip()}...) is written "
                "in a config file",
                seen,
            )
    for server in v.servers.values():
        schema = server.schema
        for rel, value, flag in catalog.marked(schema, server.config, "writeOnly"):
            path = server.source_path + (server.renamed.get(rel[0], rel[0]),) + rel[1:]
            if not flag or not isinstance(value, str) or v.resolved.is_failed(path):
                continue  # unresolved ${...}: reported elsewhere, or supplied at run time
            loc = _literal_at(v, path)
            if loc is not None:
                _warn(
                    v,
                    loc,
                    path,
                    f"secret field '{path[-1]}' is written as a literal in a config file",
                    seen,
                )
        for field_name in HEADER_FIELDS:
            headers = server.config.get(field_name)
            if not isinstance(headers, dict):
                continue
            for header, value in headers.items():
                path = server.source_path + (server.renamed.get(field_name, field_name), header)
                if not credential_header(header) or not isinstance(value, str):
                    continue
                if v.resolved.is_failed(path) or (loc := _literal_at(v, path)) is None:
                    continue
                _warn(
                    v,
                    loc,
                    path,
                    f"credential header '{header}' is written as a literal in a config file",
                    seen,
                )


def _literal_at(v: Validated, path: tuple[Any, ...]) -> Location | None:
    """Where a secret's literal text sits, when that is a config file (None for env.yaml,
    the environment or the command line, which are fine or reported elsewhere)."""
    origins = v.resolved.origins.get(path)
    if origins:
        o = origins[0]
        return (
            o.location
            if len(origins) == 1 and o.source == "config" and _in_config(v, o.location)
            else None
        )
    loc = v.location(path)
    return loc if _in_config(v, loc) else None


def _in_config(v: Validated, loc: Location | None) -> bool:
    merged = v.resolved.merged
    if loc is None or loc.file == CMDLINE:
        return False
    return merged.env is None or loc.file != merged.env.file


def _warn(
    v: Validated,
    loc: Location | None,
    path: tuple[Any, ...],
    message: str,
    seen: set[tuple[str, int]],
) -> None:
    key = (loc.file, loc.line) if loc else ("", 0)
    if key in seen:
        return
    seen.add(key)
    name = (f"{path[0]}_{path[-1]}" if len(path) > 1 else str(path[0])).lower().replace("-", "_")
    v.diagnostics.append(
        Diagnostic(
            "GYM060",
            message,
            loc,
            json_path(path),
            severity="warning",
            hints=(
                f"move it to env.yaml (e.g. {name}: ...) and write ${{{name}}} here: "
                "config files get committed and shared",
            ),
        )
    )


def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, value) for every scalar of a JSON-like tree: what secret scans walk."""
    if isinstance(node, dict):
        for k, sub in node.items():
            yield from leaves(sub, path + (k,))
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from leaves(sub, path + (i,))
    else:
        yield path, node


def _strings(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    return ((p, v) for p, v in leaves(node, path) if isinstance(v, str) and p)
