"""Canonical JSON and the plan's content hash: one definition shared by compiler and runtime."""

from __future__ import annotations

import hashlib
import json
from typing import Any

FORMAT_VERSION = 1
SECRET_MARKER = "$secret"


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(plan: dict[str, Any]) -> str:
    """sha256 over the canonical plan without its own content_hash field."""
    body = {k: v for k, v in plan.items() if k != "content_hash"}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def file_sha256(path: str) -> str:
    """Streams the file so large datasets are hashed without being held in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sibling_path(rollouts: str, suffix: str) -> str:
    """<name>.jsonl -> <name><suffix> beside it (metrics, export, report): one naming rule."""
    stem = rollouts[: -len(".jsonl")] if rollouts.endswith(".jsonl") else rollouts
    return stem + suffix
