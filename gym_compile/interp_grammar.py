"""The interpolation grammar: a string -> literal parts and ${...} nodes (Ref, Call), with raw text kept.

Grammar (OmegaConf's subset that NeMo Gym configs use):
    text     := (literal | "\\${" | interp)*          "\\${" is a literal "${"
    interp   := "${" ( resolver ":" args | key ) "}"
    resolver := "oc.env" | "oc.select"                args := arg ("," arg)*, each arg itself text
    key      := "."* segment ("." segment)*           leading dots are relative to the value's node
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RESOLVERS = ("oc.env", "oc.select", "oc.decode")


@dataclass(frozen=True)
class Ref:
    key: str
    raw: str = field(default="", compare=False)  # as written, to point the caret at it


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[tuple[Any, ...], ...]  # each arg is a sequence of parts
    raw: str = field(default="", compare=False)


class GrammarError(Exception):
    """A ${...} that does not follow the grammar; the message says where."""


def parse(text: str) -> list[Any]:
    """Splits a string into literal parts, Ref and Call nodes."""
    parts, pos = _parse_text(text, 0, stop="")
    if pos != len(text):
        raise GrammarError(f"unexpected '{text[pos]}' at position {pos + 1}")
    return parts


def _parse_text(text: str, pos: int, stop: str) -> tuple[list[Any], int]:
    parts: list[Any] = []
    buf: list[str] = []
    while pos < len(text):
        if text.startswith("\\${", pos):
            buf.append("${")
            pos += 3
        elif text.startswith("${", pos):
            if buf:
                parts.append("".join(buf))
                buf = []
            node, pos = _parse_interp(text, pos + 2)
            parts.append(node)
        elif stop and text[pos] in stop:
            break
        else:
            buf.append(text[pos])
            pos += 1
    if buf:
        parts.append("".join(buf))
    return parts, pos


def _parse_interp(text: str, pos: int) -> tuple[Any, int]:
    start = pos - 2
    end_name = pos
    while end_name < len(text) and text[end_name] not in ":}$":
        end_name += 1
    if end_name >= len(text):
        raise GrammarError("'${' is never closed with '}'")
    name = text[pos:end_name].strip()
    if text[end_name] == "}":
        if not name:
            raise GrammarError("empty '${}'")
        return Ref(name, text[start : end_name + 1]), end_name + 1
    if text[end_name] == "$":
        raise GrammarError(
            "nested '${' must follow a resolver name and ':' (e.g. ${oc.select:key,${other}})"
        )
    args: list[tuple[Any, ...]] = []
    pos = end_name + 1
    while True:
        arg, pos = _parse_text(text, pos, stop=",}")
        args.append(tuple(_strip(arg)))
        if pos >= len(text):
            raise GrammarError("'${' is never closed with '}'")
        if text[pos] == "}":
            return Call(name, tuple(args), text[start : pos + 1]), pos + 1
        pos += 1  # ','


def _strip(parts: list[Any]) -> list[Any]:
    if parts and isinstance(parts[0], str):
        parts[0] = parts[0].lstrip()
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip()
    return [p for p in parts if p != ""]


def roots(parts: Any) -> set[tuple[str]]:
    """The top-level names the ${...} of a parsed string look up, nested ones included."""
    out: set[tuple[str]] = set()
    for part in parts:
        key = part.key if isinstance(part, Ref) else ""
        if isinstance(part, Call):
            for arg in part.args:
                out |= roots(arg)
            if (
                part.name == "oc.select"
                and part.args
                and all(isinstance(p, str) for p in part.args[0])
            ):
                key = "".join(part.args[0])
        if key and not key.startswith("."):
            out.add((key.split(".")[0],))
    return out
