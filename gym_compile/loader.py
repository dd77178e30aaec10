"""load: a YAML file -> plain data + a source map (path tuple -> key and value locations)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gym_compile.diagnostics import (
    CompileError,
    Diagnostic,
    FileMissing,
    Location,
    Related,
    json_path,
)
from gym_compile.yaml_limits import (
    COMPOSE_SAFE_DEPTH,
    MAX_DEPTH,
    MAX_NODES,
    expanded_size,
    flow_too_deep,
    nesting_bound,
    too_deep,
)

try:  # libyaml's C composer is several times faster; the pure-Python one gives the same nodes
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment,unused-ignore]

MAX_FILE_BYTES = 20 * 1024 * 1024

Path_ = tuple[Any, ...]
_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}


@dataclass
class SourceMap:
    """Where each value of a document was written; keys are path tuples like ('a', 0, 'b')."""

    keys: dict[Path_, Location] = field(default_factory=dict)
    values: dict[Path_, Location] = field(default_factory=dict)

    def at(self, path: Path_) -> Location | None:
        """The value's location, else its nearest located ancestor's."""
        path = tuple(path)
        while True:
            loc = self.values.get(path)
            if loc is not None or not path:
                return loc
            path = path[:-1]

    def key_at(self, path: Path_) -> Location | None:
        return self.keys.get(tuple(path)) or self.at(path)


@dataclass
class Document:
    file: str  # as displayed in diagnostics
    path: Path  # absolute
    data: Any
    source: SourceMap
    text: str


def display_path(path: Path) -> str:
    """Paths under the working directory are shown relative, as users typed them."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def read_text(path: Path, file: str) -> str:
    """Bytes -> text with located errors for the usual ways a file is not readable YAML text."""
    try:
        if path.is_dir():
            raise CompileError(
                [Diagnostic("GYM003", f"'{file}' is a directory, not a YAML file", Location(file))]
            )
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CompileError(
                [
                    Diagnostic(
                        "GYM007",
                        f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit",
                        Location(file),
                        hints=("split it, or check it is the file you meant",),
                    )
                ]
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileMissing(
            [Diagnostic("GYM003", f"file not found: {file}", Location(file))]
        ) from None
    except PermissionError:
        raise CompileError(
            [
                Diagnostic(
                    "GYM003", f"file is not readable (permission denied): {file}", Location(file)
                )
            ]
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise CompileError(
            [
                Diagnostic(
                    "GYM001",
                    f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                    Location(file, line, col),
                    hints=("save the file as UTF-8",),
                )
            ]
        ) from None


def load_yaml(path: Path, *, file: str | None = None, allow_empty: bool = True) -> Document:
    """Parses one YAML file whose top level must be a mapping."""
    doc, problems = load_yaml_lenient(path, file=file, allow_empty=allow_empty)
    if doc is None and not os.path.lexists(path):
        raise FileMissing(problems)
    if problems or doc is None:
        raise CompileError(problems)
    return doc


def load_yaml_lenient(
    path: Path, *, file: str | None = None, allow_empty: bool = True
) -> tuple[Document | None, list[Diagnostic]]:
    """Like load_yaml, but gives the problems with whatever could be read (lint classifies files
    by their content even when they have problems)."""
    path = Path(path).resolve()
    file = file or display_path(path)
    try:
        text = read_text(path, file)
    except CompileError as exc:
        return None, exc.diagnostics
    return parse_lenient(text, file=file, path=path, allow_empty=allow_empty)


def parse_yaml(
    text: str, *, file: str, path: Path | None = None, allow_empty: bool = True
) -> Document:
    doc, problems = parse_lenient(text, file=file, path=path, allow_empty=allow_empty)
    if problems or doc is None:
        raise CompileError(problems)
    return doc


def parse_lenient(
    text: str, *, file: str, path: Path | None = None, allow_empty: bool = True
) -> tuple[Document | None, list[Diagnostic]]:
    """The document (None when the YAML does not parse) and every problem found in it."""
    deep = too_deep(text, file, _Loader) if nesting_bound(text) > COMPOSE_SAFE_DEPTH else None
    if deep is not None:
        return None, [deep]
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem):  # libyaml >= 0.2.5 stops at its own limit (1000)
            return None, [
                too_deep(text, file, _Loader)
                or flow_too_deep(text, file)
                or _syntax_diagnostic(exc, file, text)
            ]
        return None, [_syntax_diagnostic(exc, file, text)]
    except yaml.reader.ReaderError as exc:  # a control character: located by its offset
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return None, [
            Diagnostic(
                "GYM001",
                f"the file holds a control character (#x{exc.character:04x}) that YAML does not allow"
                if isinstance(exc.character, int)
                else f"YAML error: {exc.reason}",
                Location(file, line, col, span=1),
                hints=(
                    "is it a text file? remove the character or save the file again as UTF-8 text",
                ),
            )
        ]
    except yaml.YAMLError as exc:
        return None, [Diagnostic("GYM001", f"YAML error: {exc}", Location(file))]
    except RecursionError:  # the pure-Python composer below COMPOSE_SAFE_DEPTH
        return None, [
            too_deep(text, file, _Loader)
            or Diagnostic(
                "GYM007", f"document nested deeper than {MAX_DEPTH} levels", Location(file)
            )
        ]
    if root is None:
        empty = Document(file, path or Path(file), {}, SourceMap(), text)
        if not allow_empty:
            return empty, [
                Diagnostic(
                    "GYM005", "file is empty; expected a mapping of keys", Location(file, 1, 1)
                )
            ]
        return empty, []
    try:
        size = expanded_size(root, {}, 0, file)
    except CompileError as exc:
        return None, exc.diagnostics
    if size > MAX_NODES:
        return None, [
            Diagnostic(
                "GYM007",
                f"document too large: {size} values once aliases are expanded (limit {MAX_NODES})",
                _loc(file, root),
                hints=("check for aliases (*name) that repeat large anchors",),
            )
        ]
    builder = _Builder(file)
    data = builder.build(root, ())
    doc = Document(file, path or Path(file), data, builder.source, text)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__} value"
        return doc, builder.diagnostics + [
            Diagnostic(
                "GYM005",
                f"the top level is {kind}; expected a mapping of keys",
                _loc(file, root),
                hints=("a config file is 'key: value' lines; server instances are top-level keys",),
            )
        ]
    return doc, builder.diagnostics


class BadValue(yaml.YAMLError):
    """A one-line value the file limits refuse; `problem` reads like PyYAML's own errors."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def load_value(text: str) -> Any:
    """One YAML value from a line of text (an override's value, a ${...} default), under the same
    rules as a file: nesting, alias expansion, plain tags, values their tags can read. Raises
    yaml.YAMLError (BadValue for our limits) instead of crashing on `[[[[...` or `!!int abc`."""
    where = "<value>"
    if (
        nesting_bound(text) > COMPOSE_SAFE_DEPTH
        and (deep := too_deep(text, where, _Loader)) is not None
    ):
        raise BadValue(deep.message)
    value_loader = yaml.SafeLoader(
        text
    )  # PyYAML's own, as yaml.safe_load: the same messages as before
    try:
        root = value_loader.get_single_node()
    except RecursionError:
        raise BadValue(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        value_loader.dispose()
    if root is None:
        return None
    try:
        size = expanded_size(root, {}, 0, where)
    except CompileError as exc:
        raise BadValue(exc.diagnostics[0].message) from None
    if size > MAX_NODES:
        raise BadValue(f"too large: more than {MAX_NODES} values once aliases are expanded")
    builder = _Builder(where)
    data = builder.build(root, ())
    if builder.diagnostics:
        raise BadValue(builder.diagnostics[0].message)
    return data


def locate(text: str, loc: Location | None, needle: str) -> Location | None:
    """Moves a value's location onto `needle` inside it (e.g. the `${var}` in a longer string),
    so the caret points at the part that is wrong; unchanged when the needle is not found."""
    if loc is None or not needle or not loc.line:
        return loc
    lines = text.splitlines(keepends=True)
    if loc.line > len(lines):
        return loc
    start = sum(len(x) for x in lines[: loc.line - 1]) + max(loc.col - 1, 0)
    hit = text.find(needle, start, start + 4096)
    if hit < 0:
        return loc
    line = text.count("\n", 0, hit) + 1
    col = hit - (text.rfind("\n", 0, hit) + 1) + 1
    if "\n" in needle:
        return Location(loc.file, line, col)
    return Location(loc.file, line, col, span=len(needle))


def _loc(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, file: str, text: str) -> Diagnostic:
    lines = text.splitlines()
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    context = exc.context
    if (
        mark is not None
        and mark.line >= len(lines)
        and exc.context_mark is not None
        and exc.context_mark.line < len(lines)
    ):
        mark = (
            exc.context_mark
        )  # the end of the file says little; where the open construct starts says more
        context = f"{context} that starts here" if context else None
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    if mark is not None and mark.line >= len(lines) and lines:
        loc = Location(file, len(lines), len(lines[-1]) + 1, span=1)
        context = f"{context}, at the end of the file" if context else "at the end of the file"
    hints: tuple[str, ...] = ()
    offending = lines[mark.line] if mark and mark.line < len(lines) else ""
    tab = offending.find("\t", 0, (mark.column + 1) if mark else 0)
    if tab >= 0:
        problem = "a tab character is used for indentation"
        hints = ("YAML indents with spaces only: replace the tab with spaces",)
        loc = Location(file, loc.line, tab + 1, span=1)
    else:
        if context:
            problem = f"{problem} ({context})"
        if "${" in offending and re.search(r"[{\[][^}\]]*\$\{", offending):
            hints = ('inside {...} or [...] a ${...} must be quoted: name: "${var}"',)
        elif "another document" in problem:
            hints = (
                "a config file is one YAML document: remove the second '---', or split the file",
            )
    return Diagnostic("GYM001", f"YAML syntax error: {problem}", loc, hints=hints)


_TOP_KEY = re.compile(r"^(?![\s#'\"\-\[{])([^:#\n]+?)\s*:(?:\s|$)", re.M)


def top_level_keys(text: str) -> set[str]:
    """The top-level keys a file that does not parse appears to define (a best effort from the text),
    so the rest of the config is checked as if they existed."""
    return {m.group(1).strip() for m in _TOP_KEY.finditer(text)}


class _Builder:
    """Turns composed nodes into plain values, recording locations and rejecting unsafe input."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.source = SourceMap()
        self.diagnostics: list[Diagnostic] = []
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        self.source.values[path] = _loc(self.file, node)
        if node.tag not in _STANDARD_TAGS:
            self.diagnostics.append(
                Diagnostic(
                    "GYM006",
                    f"unsupported YAML tag {node.tag!r}",
                    _loc(self.file, node),
                    json_path(path),
                    hints=("only plain YAML values are allowed (no !!python or custom tags)",),
                )
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, path + (i,), depth + 1) for i, child in enumerate(node.value)]
        if node.tag.endswith(":timestamp"):
            return node.value  # JSON has no dates: keep the text as written
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        """A scalar's value; one its tag cannot read (`!!int abc`, 5000 digits) is a diagnostic."""
        try:
            return self.scalars.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, LookupError, ArithmeticError):
            tag = node.tag.rsplit(":", 1)[-1]  # the value itself is not quoted: it may be a secret
            self.diagnostics.append(
                Diagnostic(
                    "GYM006",
                    f"the value is not a valid !!{tag}",
                    _loc(self.file, node),
                    json_path(path),
                    hints=("drop the tag, or quote the value to keep it as text",),
                )
            )
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._merge_key(value_node, out, path, depth)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.diagnostics.append(
                    Diagnostic(
                        "GYM006",
                        "a mapping key must be a plain scalar",
                        _loc(self.file, key_node),
                        json_path(path),
                    )
                )
                continue
            key_loc = _loc(self.file, key_node)
            if key_node.tag not in _STANDARD_TAGS or key_node.tag.endswith(":merge"):
                self.diagnostics.append(
                    Diagnostic(
                        "GYM006",
                        f"unsupported YAML tag {key_node.tag!r} on a key",
                        key_loc,
                        json_path(path),
                        hints=("only plain YAML values are allowed (no !!python or custom tags)",),
                    )
                )
                continue
            key = (
                key_node.value
                if key_node.tag.endswith(":str")
                else str(self._scalar(key_node, path))
            )
            if key in seen:
                self.diagnostics.append(
                    Diagnostic(
                        "GYM002",
                        f"duplicate key '{key}'",
                        key_loc,
                        json_path(path + (key,)),
                        hints=("YAML keeps only one of them: delete or rename one",),
                        related=(Related(seen[key], "first defined here"),),
                    )
                )
                continue
            seen[key] = key_loc
            self.source.keys[path + (key,)] = key_loc
            out[key] = self.build(value_node, path + (key,), depth + 1)
        return out

    def _merge_key(self, node: yaml.Node, out: dict[str, Any], path: Path_, depth: int) -> None:
        """`<<: *base` copies the keys of base that the mapping does not set itself."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for src in sources:
            value = self.build(src, path, depth + 1)
            if not isinstance(value, dict):
                self.diagnostics.append(
                    Diagnostic(
                        "GYM006", "'<<' must merge a mapping", _loc(self.file, src), json_path(path)
                    )
                )
                continue
            for k, v in value.items():
                out.setdefault(k, v)
