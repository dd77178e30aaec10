"""Composed YAML nodes -> plain values (dicts, lists, scalars), each value's location recorded in a
SourceMap; what is not plain data is refused with a located diagnostic instead: a custom or
!!python tag, a scalar its tag cannot read, a key that is not a scalar, a duplicate key."""

from __future__ import annotations

from typing import Any

import yaml

from gym_compile.diagnostics import Diagnostic, Location, Related, json_path
from gym_compile.sourcemap import Path_, SourceMap
from gym_compile.yaml_limits import node_location

STANDARD_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}


class ValueBuilder:
    """Turns composed nodes into plain values, recording locations and rejecting unsafe input."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.source = SourceMap()
        self.diagnostics: list[Diagnostic] = []
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        self.source.values[path] = node_location(self.file, node)
        if node.tag not in STANDARD_TAGS:
            self.diagnostics.append(
                Diagnostic(
                    "GYM006",
                    f"unsupported YAML tag {node.tag!r}",
                    node_location(self.file, node),
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
                    node_location(self.file, node),
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
                        node_location(self.file, key_node),
                        json_path(path),
                    )
                )
                continue
            key_loc = node_location(self.file, key_node)
            if key_node.tag not in STANDARD_TAGS or key_node.tag.endswith(":merge"):
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
                        "GYM006",
                        "'<<' must merge a mapping",
                        node_location(self.file, src),
                        json_path(path),
                    )
                )
                continue
            for k, v in value.items():
                out.setdefault(k, v)
