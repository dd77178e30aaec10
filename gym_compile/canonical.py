"""Canonical JSON and the plan's content hash: one definition shared by compiler and runtime."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from gym_compile.files import sha256_of

FORMAT_VERSION = 1
SECRET_MARKER = "$secret"


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(plan: Mapping[str, Any]) -> str:
    """sha256 over the canonical plan without its own content_hash and signature fields (the
    signature signs this hash; see gym_compile/signing.py for what each promises)."""
    body = {k: v for k, v in plan.items() if k not in ("content_hash", "signature")}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def file_sha256(path: str) -> str:
    """Streams the file so large datasets are hashed without being held in memory; only a regular
    file (a plan naming /dev/zero as its input must not spin forever)."""
    return sha256_of(path)


def sibling_path(rollouts: str, suffix: str) -> str:
    """<name>.jsonl -> <name><suffix> beside it (metrics, export, report): one naming rule."""
    stem = rollouts[: -len(".jsonl")] if rollouts.endswith(".jsonl") else rollouts
    return stem + suffix
