"""Canonical requests in, stored Responses out: an SQLite response cache and a caching ModelClient.

Re-running a plan while developing a verifier should not pay for the same model calls twice. The
key is a sha256 over the canonical {model, base_url, body, extra, sample}: headers (and so the api
key) are never key material, only the hash and the response are stored, and a response that
contains a secret the caller names is not stored at all. `sample` is the rollout's repeat index,
so the num_repeats samples of one row stay distinct instead of all replaying the first one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gym_compile import jsonsafe
from gym_compile.atomic import output_refusal
from gym_compile.canonical import canonical_json
from gym_compile.files import FileRefused
from gym_compile.jsonsafe import BadJSON
from gym_compile.plan_types import CacheBlock
from gym_run.endpoint.client import ModelClient
from gym_run.endpoint.usage import add_usage

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, response TEXT NOT NULL,
    created_at REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0);
"""


def _canonical(value: Any) -> bytes:
    try:
        return canonical_json(value)
    except UnicodeEncodeError:  # lone surrogates: still canonical, ASCII-escaped
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def clean_base_url(base_url: str) -> str:
    """No userinfo, query or fragment: they may carry credentials and never select a model."""
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc.lower(), parts.path.rstrip("/"), "", ""))


def cache_key(
    model: str,
    base_url: str,
    body: Mapping[str, Any],
    *,
    extra: Mapping[str, Any] | None = None,
    sample: int = 0,
    route: str = "responses",
) -> str:
    material: dict[str, Any] = {
        "model": model,
        "base_url": clean_base_url(base_url),
        "body": body,
        "extra": dict(extra or {}),
        "sample": sample,
    }
    if route != "responses":  # keys of Responses calls stay what they always were
        material["route"] = route
    return hashlib.sha256(_canonical(material)).hexdigest()


class ResponseCache:
    """One SQLite file (WAL); every call runs in a worker thread under one lock.

    During a run the cache is a saving, never a risk: when the disk is full or the file breaks,
    `warn` is told once and the cache turns itself off (gets miss, puts are dropped), so a rollout
    whose model calls were paid for is never failed by its cache."""

    def __init__(
        self, path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None
    ) -> None:
        self.path = os.fspath(path)
        self._warn = warn
        self.broken: str | None = None  # why the cache turned itself off
        why = output_refusal(self.path)
        if why is not None:  # SQLite would happily open /dev/zero or a FIFO
            raise FileRefused(why, self.path)
        if os.path.dirname(self.path):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, timeout=30, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        self.hits = self.misses = self.stored = self.refused = 0

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _degrade(self, exc: Exception) -> None:
        """Off for the rest of the run, said once."""
        if self.broken is None:
            self.broken = f"{type(exc).__name__}: {exc}"
            if self._warn is not None:
                self._warn(
                    f"gym-run: warning: response cache {self.path} stopped working ({exc}); "
                    "going on without it (nothing more is cached or replayed this run)"
                )

    def get_sync(self, key: str) -> dict[str, Any] | None:
        if self.broken is not None:
            self.misses += 1
            return None
        try:
            with self._lock:  # SELECT then UPDATE, not UPDATE ... RETURNING (SQLite 3.35+)
                rows = self._db.execute(
                    "SELECT response FROM responses WHERE key = ?", (key,)
                ).fetchall()
                if rows:
                    self._db.execute("UPDATE responses SET hits = hits + 1 WHERE key = ?", (key,))
            found = jsonsafe.loads(rows[0][0]) if rows else None
        except (sqlite3.Error, OSError, BadJSON) as exc:
            self._degrade(exc)
            found = None
        if not isinstance(found, dict):
            self.misses += 1
            return None
        self.hits += 1
        return found

    def put_sync(
        self, key: str, response: Mapping[str, Any], *, model: str = "", secrets: Sequence[str] = ()
    ) -> bool:
        """False (nothing written) when the response text contains any of `secrets`."""
        text = json.dumps(response, ensure_ascii=False, separators=(",", ":"))
        if any(s and (s in text or json.dumps(s)[1:-1] in text) for s in secrets):
            self.refused += 1
            return False
        if self.broken is not None:
            return False
        try:
            self._run(
                "INSERT OR REPLACE INTO responses (key, model, response, created_at) "
                "VALUES (?, ?, ?, ?)",
                (key, model, text, time.time()),
            )
        except (sqlite3.Error, OSError) as exc:  # a full disk: the answer is paid for, keep it
            self._degrade(exc)
            return False
        self.stored += 1
        return True

    async def get(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.get_sync, key)

    async def put(
        self, key: str, response: Mapping[str, Any], *, model: str = "", secrets: Sequence[str] = ()
    ) -> bool:
        return await asyncio.to_thread(self.put_sync, key, response, model=model, secrets=secrets)

    def stats(self) -> dict[str, Any]:
        by_model = dict(
            self._run("SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY model")
        )
        size = sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))
        return {
            "path": self.path,
            "entries": sum(by_model.values()),
            "by_model": by_model,
            "bytes": size,
            "session": {
                "hits": self.hits,
                "misses": self.misses,
                "stored": self.stored,
                "refused": self.refused,
            },
        }

    def clear(self) -> int:
        """Deletes every entry and shrinks the file; returns how many there were."""
        with self._lock:
            count = self._db.execute("DELETE FROM responses").rowcount
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class CacheTally:
    """One rollout's cache outcome; `saved_usage_by_server` is usage replayed, not paid for."""

    sample: int = 0
    hits: int = 0
    misses: int = 0
    saved_usage_by_server: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def all_hits(self) -> bool:
        return self.hits > 0 and self.misses == 0

    def as_record(self) -> CacheBlock:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "saved_usage_by_server": self.saved_usage_by_server,
        }


_TALLY: contextvars.ContextVar[CacheTally | None] = contextvars.ContextVar(
    "gym_cache_tally", default=None
)


@contextlib.contextmanager
def cache_scope(sample: int = 0) -> Iterator[CacheTally]:
    """Wrap one rollout (agent.run) in it: model calls inside count into the tally it yields."""
    tally = CacheTally(sample)
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


def current_tally() -> CacheTally | None:
    """The tally of the rollout running in this task, if any."""
    return _TALLY.get()


@contextlib.contextmanager
def use_tally(tally: CacheTally | None) -> Iterator[None]:
    """Count into an existing rollout's tally (a model call served for it from another task)."""
    token = _TALLY.set(tally)
    try:
        yield
    finally:
        _TALLY.reset(token)


class CachingClient:
    """A ModelClient that answers from the cache and stores what `inner` answers."""

    def __init__(
        self,
        inner: ModelClient,
        cache: ResponseCache,
        base_url: str,
        model: str,
        *,
        server: str = "",
        key_extra: Mapping[str, Any] | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.inner, self.cache, self.base_url, self.model = inner, cache, base_url, model
        self.server = server or model
        self._extra = dict(key_extra or {})
        self._secrets = tuple(s for s in secrets if s)

    @property
    def stats(self) -> Any:
        """The inner client's call counters (requests that reached the endpoint)."""
        return getattr(self.inner, "stats", None)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._through(self.inner.create, "responses", body)

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Chat completions are keyed apart from Responses calls with the same body."""
        return await self._through(self.inner.chat, "chat/completions", body)

    async def _through(
        self,
        call: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
        route: str,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        tally = _TALLY.get()
        sample = tally.sample if tally else 0
        key = cache_key(
            self.model, self.base_url, body, extra=self._extra, sample=sample, route=route
        )
        cached = await self.cache.get(key)
        if cached is not None:
            if tally is not None:
                tally.hits += 1
                add_usage(
                    tally.saved_usage_by_server.setdefault(self.server, {}), cached.get("usage")
                )
            return cached
        response = await call(body)
        if tally is not None:
            tally.misses += 1
        if response.get("status", "completed") == "completed" and not response.get("error"):
            await self.cache.put(key, response, model=self.model, secrets=self._secrets)
        return response


def open_cache(path: str, warn: Callable[[str], None]) -> ResponseCache | None:
    """The plan's response cache, or None (and one warning) when it cannot be opened: the cache
    saves money, it must never stop a run (nor fail a paid rollout later: see ResponseCache)."""
    try:
        return ResponseCache(path, warn=warn)
    except (OSError, sqlite3.Error) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        warn(
            f"gym-run: warning: response cache {path} cannot be opened ({why}); running without "
            "it (fix the path, or pass --no-cache to silence this)"
        )
        return None
