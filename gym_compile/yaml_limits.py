"""Limits of a YAML document: nesting depth and alias expansion, checked before any value is
built, so a hostile file costs milliseconds and gets a located GYM007, never a hang or a crash."""

from __future__ import annotations

import yaml

from gym_compile.diagnostics import CompileError, Diagnostic, Location

MAX_NODES = (
    1_000_000  # values once aliases are expanded: stops "billion laughs" before it costs anything
)
MAX_DEPTH = 200
# Composing is recursive (libyaml's composer in C, PyYAML's in Python): 25,000 nested "[" overflow
# the C stack (a segfault) and a few hundred exhaust Python's recursion limit. A document that could
# nest deeper than this is first walked as a flat event stream, which needs no recursion.
COMPOSE_SAFE_DEPTH = 2000
_IN_PROGRESS = -1


def expanded_size(node: yaml.Node, memo: dict[int, int], depth: int, file: str) -> int:
    """Counts values as if every alias were copied out, in time linear in the distinct nodes."""
    known = memo.get(id(node))
    if known == _IN_PROGRESS:
        raise CompileError(
            [
                Diagnostic(
                    "GYM007",
                    "an alias refers to a collection that contains it (a cycle)",
                    node_location(file, node),
                    hints=("an alias (*name) cannot be used inside its own anchor (&name)",),
                )
            ]
        )
    if known is not None:
        return known
    memo[id(node)] = _IN_PROGRESS
    if depth > MAX_DEPTH:
        raise CompileError(
            [
                Diagnostic(
                    "GYM007",
                    f"document nested deeper than {MAX_DEPTH} levels",
                    node_location(file, node),
                )
            ]
        )
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += expanded_size(key, memo, depth + 1, file) + expanded_size(
                value, memo, depth + 1, file
            )
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += expanded_size(child, memo, depth + 1, file)
    memo[id(node)] = size = min(size, MAX_NODES + 1)
    return size


MAX_LINE = 1024 * 1024  # characters on one line: an 18 MB line took minutes to parse and fail


def long_line(text: str, file: str) -> Diagnostic | None:
    """The first line longer than MAX_LINE, before any parsing (a config is written by people)."""
    if len(text) <= MAX_LINE:
        return None
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE:
            return Diagnostic(
                "GYM007",
                f"line {number} is {len(line)} characters long, over the {MAX_LINE}-character "
                "limit for one line",
                Location(file, number, 1),
                hints=("a config is written by people: split the value over several lines",),
            )
    return None


def nesting_bound(text: str) -> int:
    """An upper bound of the nesting depth, cheap to compute: each level is a flow bracket, or a
    block collection indented deeper than its parent (two per column: a sequence may sit at its
    key's indentation)."""
    widest = max(map(len, text.split("\n")), default=0)
    return text.count("[") + text.count("{") + 2 * (widest + 1)


def too_deep(text: str, file: str, loader_cls: type) -> Diagnostic | None:
    """The first collection nested deeper than MAX_DEPTH, found from the event stream (no
    recursion, no nodes built); None when there is none or the YAML breaks before it."""
    loader = loader_cls(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return Diagnostic(
                        "GYM007",
                        f"document nested deeper than {MAX_DEPTH} levels",
                        Location(file, mark.line + 1, mark.column + 1),
                        hints=("a config needs a few levels; check for a runaway [ or {",),
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None  # composing reports it, and gets no deeper than the parser did
    finally:
        loader.dispose()
    return None


def flow_too_deep(text: str, file: str) -> Diagnostic | None:
    """Where flow brackets first nest deeper than MAX_DEPTH, by counting them (quotes skipped):
    libyaml's scanner looks ahead through every '[' before the parser emits an event, so the
    event stream cannot say where the limit was crossed."""
    depth, line, col, quote = 1, 1, 0, ""  # 1: the top-level mapping, as the event stream counts it
    for char in text:
        col += 1
        if char == "\n":
            line, col = line + 1, 0
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return Diagnostic(
                    "GYM007",
                    f"document nested deeper than {MAX_DEPTH} levels",
                    Location(file, line, col),
                    hints=("a config needs a few levels; check for a runaway [ or {",),
                )
        elif char in "]}":
            depth -= 1
    return None


def node_location(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)
