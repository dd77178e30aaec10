"""JSON Schema errors -> diagnostics a person can act on: each at the key or value it is about,
with the value quoted unless it may be a secret, a did-you-mean for an unknown key or value, the
union branch the value was meant for rather than every branch, and where an interpolated value was
defined. validate.py checks servers and globals with it, datasets.py each dataset entry."""

from __future__ import annotations

from typing import Any, Protocol

from jsonschema import ValidationError

from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import Diagnostic, Location, Related, did_you_mean, json_path
from gym_compile.interpolate import Resolved
from gym_compile.secretshape import credential_header, looks_secret, secret_key_name
from gym_compile.sourcemap import Path_


class Checked(Protocol):
    """What a check reads and writes (gym_compile.validate.Validated is one)."""

    @property
    def resolved(self) -> Resolved: ...

    @property
    def diagnostics(self) -> list[Diagnostic]: ...

    def location(self, path: Path_) -> Location | None: ...

    def related(self, path: Path_) -> tuple[Related, ...]: ...


def check(
    out: Checked, validator: Any, instance: Any, path: Path_, renamed: dict[str, str]
) -> bool:
    ok = True
    seen: set[Diagnostic] = set()  # a set, not the list: 20,000 unknown keys took 30 s (quadratic)
    for error in sorted(
        validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
    ):
        ok = ok and _unsure_extra_keys(error)
        for d in _diagnose(out, error, path, renamed, validator.schema):
            if d not in seen:  # `required` names every missing key each time
                seen.add(d)
                out.diagnostics.append(d)
    return ok


def _unsure_extra_keys(error: ValidationError) -> bool:
    """Unknown keys where a derived schema may not know every key: warnings, the value is kept."""
    return error.validator == "additionalProperties" and bool(error.schema.get("x-incomplete"))


def _diagnose(
    out: Checked,
    error: ValidationError,
    base: Path_,
    renamed: dict[str, str],
    schema: dict[str, Any],
) -> list[Diagnostic]:
    rel = list(error.absolute_path)
    if rel and rel[0] in renamed:
        rel[0] = renamed[rel[0]]
    path = base + tuple(rel)
    if out.resolved.is_failed(path):
        return []  # an unresolved ${...} here was reported already
    where = json_path(path)
    related = out.related(path)
    v = error.validator
    if v == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        if not rel:
            allowed += list(schema.get("x-aliases", {}))
        extras = [k for k in error.instance if k not in error.schema.get("properties", {})]
        unsure = error.schema.get("x-incomplete") or []
        return [
            Diagnostic(
                "GYM091" if unsure else "GYM030",
                f"unknown key '{k}'"
                + (
                    " (the schema derived from the server's source may not know every key)"
                    if unsure
                    else ""
                ),
                out.resolved.merged.source.key_at(path + (k,)),
                json_path(path + (k,)),
                severity="warning" if unsure else "error",
                hints=did_you_mean(k, allowed)
                + _sampling_hint(k)
                + (f"allowed here: {', '.join(sorted(allowed))}",)
                + tuple(f"not read: {why}" for why in unsure[:3]),
            )
            for k in extras
        ]
    if v == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        aliases = {c: a for a, c in schema.get("x-aliases", {}).items()} if not rel else {}
        return [
            Diagnostic(
                "GYM032",
                f"missing required key '{k}'" + (f" (or '{aliases[k]}')" if k in aliases else ""),
                out.resolved.merged.source.key_at(path),
                where,
                hints=(_describe(error.schema, k),) if _describe(error.schema, k) else (),
            )
            for k in missing
        ]
    secret = _secret_here(out, path, error)
    if v in ("anyOf", "oneOf") and error.context:
        chosen = _branch_errors(error)
        if chosen is None:  # no branch has the value's type: one message naming them all
            types = [t for e in error.context for t in _as_list(e.validator_value)]
            return [
                Diagnostic(
                    "GYM031",
                    f"expected {' or '.join(dict.fromkeys(types))}, got {kind(error.instance)}"
                    + ("" if secret else f" ({_short(error.instance)})"),
                    out.location(path),
                    where,
                    related=related,
                )
            ]
        if chosen:
            return [d for e in chosen for d in _diagnose(out, e, base, renamed, schema)]
    if v == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        shown = "" if secret else f" ({_short(error.instance)})"
        return [
            Diagnostic(
                "GYM031",
                f"expected {expected}, got {kind(error.instance)}{shown}",
                out.location(path),
                where,
                related=related,
            )
        ]
    if v in ("enum", "const"):
        allowed = error.validator_value if v == "enum" else [error.validator_value]
        return [
            Diagnostic(
                "GYM033",
                f"{'the value' if secret else _short(error.instance)} is not one of: "
                f"{', '.join(map(_short, allowed))}",
                out.location(path),
                where,
                related=related,
                hints=() if secret else did_you_mean(str(error.instance), map(str, allowed)),
            )
        ]
    message = f"the value breaks the schema rule '{v}'" if secret else error.message
    return [Diagnostic("GYM034", message, out.location(path), where, related=related)]


def _secret_here(out: Checked, path: Path_, error: ValidationError) -> bool:
    """A value that may be a secret is never quoted in a message: a writeOnly field (api_key), a
    secret-named key or source (policy_api_key, HF_TOKEN), a credential header."""
    if isinstance(error.schema, dict) and error.schema.get("writeOnly"):
        return True
    if path and (secret_key_name(path[-1]) or credential_header(path[-1])):
        return True
    return any(secret_key_name(o.key) for o in out.resolved.origins.get(path, [])) or looks_secret(
        error.instance
    )


def _branch_errors(error: ValidationError) -> list[ValidationError] | None:
    """The errors of the union branch the value was meant for: not one whose type differs, nor
    one whose `type` discriminator differs; of several, the one with the fewest errors.
    None when every branch rejects the value's type; [] when no branch can be told apart."""
    branches: dict[Any, list[ValidationError]] = {}
    for e in error.context or []:
        branches.setdefault(e.relative_schema_path[0], []).append(e)
    if all(
        any(e.validator == "type" and not e.relative_path for e in errs)
        for errs in branches.values()
    ) and all(e.validator == "type" for errs in branches.values() for e in errs):
        return None
    meant = [
        errs
        for errs in branches.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
        and not any(
            e.validator in ("const", "enum") and list(e.relative_path) == ["type"] for e in errs
        )
    ]
    if not meant:
        return []
    return min(meant, key=len)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _sampling_hint(key: str) -> tuple[str, ...]:
    """temperature & co. are request parameters, not server settings: say where they go."""
    params = catalog.validator("input_row.schema.json").schema["properties"][
        "responses_create_params"
    ]
    if key not in params["properties"] or key in ("input", "model"):
        return ()
    return (
        f"'{key}' is a request parameter: set it for the job with +responses_create_params.{key}=..."
        " (or per row in the input JSONL)",
    )


def _describe(schema: dict[str, Any], key: str) -> str:
    return schema.get("properties", {}).get(key, {}).get("description", "")


def kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
