"""diff: two plans -> what changed between them (servers, job, secrets, sources), for review before a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gym_compile.inspect.show import flatten, show_value

_ABSENT = object()


def _keyed_changes(a: Mapping[str, Any], b: Mapping[str, Any], indent: str) -> list[str]:
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if old == new:
            continue
        if old is _ABSENT:
            out.append(f"{indent}+ {key} = {show_value(new)}")
        elif new is _ABSENT:
            out.append(f"{indent}- {key} (was {show_value(old)})")
        else:
            out.append(f"{indent}~ {key}: {show_value(old)} -> {show_value(new)}")
    return out


def _servers(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for name in sorted(set(a) | set(b)):
        old, new = a.get(name), b.get(name)
        if old == new:
            continue
        if old is None or new is None:
            s = new if new is not None else old
            assert s is not None  # old != new, so not both None
            out.append(
                f"  {'+' if old is None else '-'} {name} ({s.get('type')}/{s.get('implementation')})"
            )
            continue
        kinds = [(old.get(k), new.get(k)) for k in ("type", "implementation")]
        if any(x != y for x, y in kinds):
            out.append(
                f"  ~ {name}: {old.get('type')}/{old.get('implementation')} -> "
                f"{new.get('type')}/{new.get('implementation')}"
            )
        else:
            out.append(f"  ~ {name}")
        out += _keyed_changes(
            flatten(old.get("config") or {}), flatten(new.get("config") or {}), "      "
        )
    return out


def _sources(a: list[Mapping[str, Any]], b: list[Mapping[str, Any]]) -> list[str]:
    old = {(s.get("role"), s.get("path")): s.get("sha256", "") for s in a}
    new = {(s.get("role"), s.get("path")): s.get("sha256", "") for s in b}
    out: list[str] = []
    for key in sorted(set(old) | set(new), key=lambda k: (str(k[0]), str(k[1]))):
        role, path = key
        if key not in old:
            out.append(f"  + {role} {path}")
        elif key not in new:
            out.append(f"  - {role} {path}")
        elif old[key] != new[key]:
            out.append(f"  ~ {role} {path}: sha256 {old[key][:12]} -> {new[key][:12]}")
    return out


def diff_plans(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Sections with +/-/~ lines; empty when the plans describe the same run."""
    sections: list[tuple[str, list[str]]] = [
        (
            "plan",
            _keyed_changes(
                {k: a.get(k) for k in ("format_version", "env_file")},
                {k: b.get(k) for k in ("format_version", "env_file")},
                "  ",
            )
            + _keyed_changes(
                flatten(a.get("compiler") or {}, "compiler"),
                flatten(b.get("compiler") or {}, "compiler"),
                "  ",
            ),
        ),
        ("servers", _servers(a.get("servers") or {}, b.get("servers") or {})),
        ("job", _job(a.get("job"), b.get("job"))),
        (
            "secrets",
            _keyed_changes(flatten(a.get("secrets") or {}), flatten(b.get("secrets") or {}), "  "),
        ),
        ("sources", _sources(a.get("sources") or [], b.get("sources") or [])),
    ]
    out: list[str] = []
    for title, lines in sections:
        if lines:
            out += [f"{title}:"] + lines
    return out


def _job(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[str]:
    if a == b:
        return []
    if a is None:
        return [f"  + job for agent {b.get('agent') if isinstance(b, dict) else b}"]
    if b is None:
        return ["  - job (the second plan only describes servers)"]
    return _keyed_changes(flatten(a), flatten(b), "  ")
