"""load: a YAML file -> plain data + a source map (path tuple -> key and value locations).

Reading the file (regular files only, size-limited, UTF-8) and parsing it under the limits of
yaml_limits.py happen here; turning nodes into values is yaml_values.py, syntax errors become
diagnostics in yaml_syntax.py, and the SourceMap itself lives in sourcemap.py."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import yaml

from gym_compile.diagnostics import CompileError, Diagnostic, FileMissing, Location, excerpts
from gym_compile.files import FileRefused, read_bytes, real_path
from gym_compile.sourcemap import Document, SourceMap, display_path
from gym_compile.yaml_limits import (
    COMPOSE_SAFE_DEPTH,
    MAX_DEPTH,
    MAX_NODES,
    expanded_size,
    flow_too_deep,
    long_line,
    nesting_bound,
    node_location,
    too_deep,
)
from gym_compile.yaml_syntax import syntax_diagnostic
from gym_compile.yaml_values import ValueBuilder

try:  # libyaml's C composer is several times faster; the pure-Python one gives the same nodes
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment,unused-ignore]

MAX_FILE_BYTES = 20 * 1024 * 1024


def read_text(path: Path, file: str) -> str:
    """Bytes -> text with located errors for the usual ways a file is not readable YAML text.

    Only a regular file of at most MAX_FILE_BYTES is read (gym_compile/files.py): a device, a FIFO
    or /proc is refused before reading, and the text is remembered for diagnostic excerpts."""
    try:
        raw = read_bytes(path, MAX_FILE_BYTES, "a config file")
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
    except FileRefused as exc:
        if exc.errno == errno.EFBIG:
            raise CompileError(
                [
                    Diagnostic(
                        "GYM007",
                        f"file {exc.strerror}",
                        Location(file),
                        hints=("split it, or check it is the file you meant",),
                    )
                ]
            ) from None
        why = (
            "is a directory, not a YAML file"
            if exc.errno == errno.EISDIR
            else f"{exc.strerror}; config files are read from regular files only"
        )
        raise CompileError([Diagnostic("GYM003", f"'{file}' {why}", Location(file))]) from None
    except OSError as exc:  # a symbolic link loop, an I/O error
        raise CompileError(
            [Diagnostic("GYM003", f"cannot read {file}: {exc.strerror or exc}", Location(file))]
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
    path = real_path(path)
    file = file or display_path(path)
    try:
        text = read_text(path, file)
    except CompileError as exc:
        return None, exc.diagnostics
    excerpts.remember(path, text)
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
    long = long_line(text, file)
    if long is not None:
        return None, [long]
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
                or syntax_diagnostic(exc, file, text)
            ]
        return None, [syntax_diagnostic(exc, file, text)]
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
                node_location(file, root),
                hints=("check for aliases (*name) that repeat large anchors",),
            )
        ]
    builder = ValueBuilder(file)
    data = builder.build(root, ())
    doc = Document(file, path or Path(file), data, builder.source, text)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__} value"
        return doc, builder.diagnostics + [
            Diagnostic(
                "GYM005",
                f"the top level is {kind}; expected a mapping of keys",
                node_location(file, root),
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
    builder = ValueBuilder(where)
    data = builder.build(root, ())
    if builder.diagnostics:
        raise BadValue(builder.diagnostics[0].message)
    return data


_TOP_KEY = re.compile(r"^(?![\s#'\"\-\[{])([^:#\n]+?)\s*:(?:\s|$)", re.M)


def top_level_keys(text: str) -> set[str]:
    """The top-level keys a file that does not parse appears to define (a best effort from the text),
    so the rest of the config is checked as if they existed."""
    return {m.group(1).strip() for m in _TOP_KEY.finditer(text)}
