"""What a plan's hash promises, and the signature that lets gym-run send secrets for it.

`content_hash` (sha256 of the canonical plan) promises the plan is intact: not edited by hand or
by a tool that forgot to recompute it. It cannot promise who wrote the plan: anyone can recompute
it, so a plan edited by someone else (a new base_url, an extra header fed by an environment
variable) and re-hashed used to make gym-run send the user's key wherever it said.

`signature` is an HMAC-SHA256 of the content hash under a per-user key that never leaves the
machine: `$GYM_PLAN_KEY` if set (CI: the same secret in the compile and the run job), else
`~/.config/gym-compile/plan-key` (`$XDG_CONFIG_HOME`), created 0600 by the first compile that needs
it. gym-compile signs every plan that refers to a secret; gym-run resolves no secret for a plan
whose signature does not verify under the same key. A plan without secrets needs no signature.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gym_compile.canonical import content_hash
from gym_compile.files import read_bytes
from gym_compile.plan_types import Plan

KEY_ENV = "GYM_PLAN_KEY"
PREFIX = "hmac-sha256:"
_KEY_BYTES = 32
_MIN_ENV_KEY = 16  # characters of GYM_PLAN_KEY: a guessable key signs nothing


class PlanKeyError(Exception):
    """The plan key cannot be read or made; `str()` says why and what to do."""


def key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "gym-compile" / "plan-key"


def key_source() -> str:
    """Where the key comes from, for messages (never the key)."""
    return f"${KEY_ENV}" if os.environ.get(KEY_ENV) else str(key_path())


def load_key(*, create: bool) -> bytes | None:
    """The user's plan key; None when there is none and `create` is False."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        if len(from_env) < _MIN_ENV_KEY:
            raise PlanKeyError(
                f"{KEY_ENV} is shorter than {_MIN_ENV_KEY} characters; use a random value"
            )
        return from_env.encode()
    path = key_path()
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            return None
    return _make_key(path)


def _read_key(path: Path) -> bytes:
    try:
        data = read_bytes(path, 1024, "a plan key").strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise PlanKeyError(f"cannot read the plan key {path}: {exc.strerror or exc}") from None
    if len(data) < _MIN_ENV_KEY:
        raise PlanKeyError(f"the plan key {path} is too short; delete it and compile again")
    return data


def _make_key(path: Path) -> bytes:
    """32 random bytes as hex, in a file only its owner can read; a concurrent compile's key wins."""
    key = secrets.token_hex(_KEY_BYTES).encode()
    try:
        os.makedirs(path.parent, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    except OSError as exc:
        raise PlanKeyError(
            f"cannot create the plan key {path}: {exc.strerror or exc} (set {KEY_ENV} instead)"
        ) from None
    try:
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def signature(plan: Mapping[str, Any], key: bytes) -> str:
    """HMAC of the content hash (which covers everything but itself and the signature)."""
    digest = hmac.new(key, content_hash(plan).encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest


def sign(plan: Plan) -> None:
    """Adds `signature` to a plan whose content_hash is set (creating the key when needed)."""
    key = load_key(create=True)
    assert key is not None
    plan["signature"] = signature(plan, key)


def verified(plan: Mapping[str, Any]) -> tuple[bool, str]:
    """(True, "") when the plan's signature verifies under this user's key; else (False, why)."""
    given = plan.get("signature")
    if not isinstance(given, str):
        return False, "it carries no signature"
    try:
        key = load_key(create=False)
    except PlanKeyError as exc:
        return False, str(exc)
    if key is None:
        return False, f"there is no plan key on this machine ({key_path()})"
    if not hmac.compare_digest(given, signature(plan, key)):
        return False, f"its signature was not made with this user's plan key ({key_source()})"
    return True, ""
