"""Where a config holds secrets, and the command-line overrides that fill them.

A value is secret when its schema field is writeOnly, when it comes from an env.yaml key or
environment variable whose name looks secret (policy_api_key, HF_TOKEN), when it looks like a
credential (sk-..., Bearer ...), or when it is an HTTP header value that carries a credential
(Authorization, api-key, x-api-key) or comes from env.yaml or the environment. The plan holds
references for all of them (plan.py); a diagnostic that points at an override setting one shows
`+key=***` (GYM061 once printed a command-line key unless it looked like sk- and 20 characters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import CMDLINE, Diagnostic, Location, Related
from gym_compile.secretscan import (
    HEADER_FIELDS,
    MASK,
    credential_header,
    leaves,
    looks_secret,
    secret_key_name,
)
from gym_compile.validate import Server, Validated

Path_ = tuple[Any, ...]


def secret_leaves(v: Validated, server: Server, config: dict[str, Any]) -> Iterator[Path_]:
    """Paths (relative to the server's config) of every secret value in `config`."""
    schema = server.schema
    write_only = {rel for rel, _value, flag in catalog.marked(schema, config, "writeOnly") if flag}
    for rel, value in list(leaves(config, ())):
        if value is None or not rel:
            continue
        path = full_path(server, rel)
        if rel in write_only or flows_secret(v, path, value) or secret_header(v, rel, path):
            yield rel


def full_path(server: Server, rel: Path_) -> Path_:
    """A config-relative path as written in the tree (the alias a user wrote, if any)."""
    return server.source_path + (server.renamed.get(rel[0], rel[0]),) + rel[1:]


def secret_header(v: Validated, rel: Path_, path: Path_) -> bool:
    """A header value a plan must hold as a reference: a credential header, or any header whose
    value came from env.yaml or an environment variable."""
    if len(rel) != 2 or rel[0] not in HEADER_FIELDS:
        return False
    origins = v.resolved.origins.get(path, [])
    return credential_header(rel[1]) or any(
        o.source in ("env_file", "environment") for o in origins
    )


def flows_secret(v: Validated, path: Path_, value: Any) -> bool:
    if looks_secret(value):
        return True
    origins = v.resolved.origins.get(path, [])
    return any(o.source in ("env_file", "environment") and secret_key_name(o.key) for o in origins)


def secret_override_labels(v: Validated) -> set[str]:
    """The overrides (as typed) whose value ends up in a secret: set directly, or through ${...}."""
    labels: set[str] = set()
    for server in v.servers.values():
        for rel in secret_leaves(v, server, server.config):
            path = full_path(server, rel)
            locations = [v.location(path)] + [o.location for o in v.resolved.origins.get(path, [])]
            labels |= {loc.label for loc in locations if loc is not None and loc.file == CMDLINE}
    return labels


def mask_override(label: str) -> str:
    """`+a.api_key=value` -> `+a.api_key=***`."""
    head, eq, _value = label.partition("=")
    return f"{head}={MASK}" if eq else label


def secret_named_override(label: str) -> bool:
    """An override whose own key says it is a secret (`+policy_api_key=...`, `...api_key=...`,
    `...default_headers.Authorization=...`), whatever its value looks like."""
    head, eq, _value = label.partition("=")
    parts = head.lstrip("+~").split(".")
    if not eq or not parts:
        return False
    if secret_key_name(parts[-1]):
        return True
    return len(parts) >= 2 and parts[-2] in HEADER_FIELDS and credential_header(parts[-1])


def mask_labels(diagnostics: Iterable[Diagnostic], labels: set[str]) -> list[Diagnostic]:
    """The diagnostics with every override in `labels` (or secret-named) shown as `+key=***`."""

    def fix(loc: Location | None) -> Location | None:
        if loc is None or loc.file != CMDLINE:
            return loc
        if loc.label in labels or secret_named_override(loc.label):
            return dataclasses.replace(loc, label=mask_override(loc.label))
        return loc

    out = []
    for d in diagnostics:
        related = tuple(Related(fix(r.location) or r.location, r.message) for r in d.related)
        out.append(dataclasses.replace(d, location=fix(d.location), related=related))
    return out
