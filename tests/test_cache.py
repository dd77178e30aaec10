"""gym_run.endpoint.cache: keys, the SQLite store under concurrency, secrets kept out, and CachingClient
over a real stand-in endpoint (a second run costs no requests)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from gym_run.endpoint.cache import (
    CachingClient,
    ResponseCache,
    cache_key,
    cache_scope,
    clean_base_url,
)
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.pricing import CostMeter, PriceTable, billed_usage
from gym_run.servers.builtin.agent import SimpleAgent
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.resources import SimpleWeather
from gym_run.standin.server import start_standin

from tests.runtime_helpers import weather_row

API_KEY = "sk-live-SECRETVALUE-0123456789abcdef"


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def standin():
    server = await start_standin("127.0.0.1", 0, api_key=API_KEY)
    yield server
    await server.close()


def all_cache_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_key_is_canonical_and_excludes_credentials_in_urls():
    body = {"input": "hi", "temperature": 0.2}
    same = {"temperature": 0.2, "input": "hi"}
    assert cache_key("m", "https://api.openai.com/v1", body) == cache_key(
        "m", "https://API.openai.com/v1/", same
    )
    assert clean_base_url("https://user:pw@Host:8443/v1/?key=sk-1#x") == "https://host:8443/v1"
    assert cache_key("m", "https://u:sk-1@h/v1", body) == cache_key("m", "https://h/v1", body)
    distinct = {
        cache_key("m", "https://h/v1", body),
        cache_key("n", "https://h/v1", body),
        cache_key("m", "https://g/v1", body),
        cache_key("m", "https://h/v1", body, sample=1),
        cache_key("m", "https://h/v1", body, extra={"top_k": 5}),
        cache_key("m", "https://h/v1", {**body, "temperature": 0.3}),
    }
    assert len(distinct) == 6
    assert (
        len(cache_key("m", "https://h/v1", {"input": "\ud800"})) == 64
    )  # lone surrogate still keys


async def test_store_round_trip_stats_and_clear(tmp_path):
    cache = ResponseCache(tmp_path / "c" / "responses.sqlite")
    assert await cache.get("k1") is None
    assert await cache.put("k1", {"id": "resp_1", "output": ["é"]}, model="gpt-4.1")
    assert await cache.get("k1") == {"id": "resp_1", "output": ["é"]}
    stats = cache.stats()
    assert stats["entries"] == 1 and stats["by_model"] == {"gpt-4.1": 1} and stats["bytes"] > 0
    assert stats["session"] == {"hits": 1, "misses": 1, "stored": 1, "refused": 0}
    assert cache.clear() == 1 and cache.stats()["entries"] == 0 and await cache.get("k1") is None
    cache.close()
    with sqlite3.connect(tmp_path / "c" / "responses.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_many_concurrent_puts_and_gets_from_two_connections(tmp_path):
    path = tmp_path / "responses.sqlite"
    first, second = ResponseCache(path), ResponseCache(path)

    async def one(i: int) -> None:
        writer, reader = (first, second) if i % 2 else (second, first)
        await writer.put(
            f"k{i}", {"id": f"resp_{i}", "n": i, "pad": "x" * (i % 7) * 100}, model=f"m{i % 3}"
        )
        got = await reader.get(f"k{i}")
        assert got is not None and got["n"] == i
        assert (await writer.get(f"k{i}"))["id"] == f"resp_{i}"

    await asyncio.gather(*(one(i) for i in range(300)))
    assert first.stats()["entries"] == 300
    assert sum(second.stats()["by_model"].values()) == 300
    assert first.hits + second.hits == 600
    first.close()
    second.close()


async def test_secrets_never_reach_the_file_even_from_unusual_bodies(tmp_path, session, standin):
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    inner = OpenAIClient(
        session,
        base_url=standin.url,
        api_key=API_KEY,
        model="stand-in-1",
        default_headers={"X-Api-Key": API_KEY},
    )
    client = CachingClient(inner, cache, standin.url, "stand-in-1", secrets=[API_KEY])
    normal = {"input": "hello there"}
    # The stand-in, like OpenAI, echoes instructions and metadata: this response contains the key.
    unusual = {
        "input": f"my key is {API_KEY}",
        "instructions": f"Authorization: Bearer {API_KEY}",
        "metadata": {"api_key": API_KEY, "headers": f'{{"Authorization": "{API_KEY}"}}'},
    }
    for _ in range(2):
        await client.create(normal)
        await client.create(unusual)
    assert standin.app["stats"]["ok"] == 3  # normal once (then cached), unusual every time
    assert cache.stats()["session"]["refused"] == 2 and cache.stats()["entries"] == 1
    cache.close()
    data = all_cache_bytes(path)
    assert b"hello there" in data  # the store is readable: the check below is not vacuous
    assert API_KEY.encode() not in data and b"SECRETVALUE" not in data


async def test_caching_client_replays_a_whole_rollout_and_tallies_hits(tmp_path, session, standin):
    cache = ResponseCache(tmp_path / "responses.sqlite")
    inner = OpenAIClient(session, base_url=standin.url, api_key=API_KEY, model="stand-in-1")
    model = ModelServer(
        "policy_model",
        CachingClient(
            inner, cache, standin.url, "stand-in-1", server="policy_model", secrets=[API_KEY]
        ),
    )
    agent = SimpleAgent("agent", model, SimpleWeather("weather", {}), None)
    row = weather_row("how's the weather in new york?")

    with cache_scope(sample=0) as first:
        fresh = await agent.run(row)
    assert (first.hits, first.misses, first.all_hits) == (0, 2, False)
    assert standin.app["stats"]["ok"] == 2

    with cache_scope(sample=0) as second:
        replay = await agent.run(row)
    assert (second.hits, second.misses, second.all_hits) == (2, 0, True)
    assert standin.app["stats"]["ok"] == 2  # no request left the process
    assert (
        replay["response"] == fresh["response"]
        and replay["_gym"]["usage"] == fresh["_gym"]["usage"]
    )
    assert (
        second.saved_usage_by_server["policy_model"]["input_tokens"]
        == fresh["_gym"]["usage"]["input_tokens"]
    )
    assert second.as_record()["hits"] == 2
    # priced as if the stand-in were gpt-4.1: the replayed rollout was not paid for
    meter = CostMeter(PriceTable.load(), {"policy_model": "gpt-4.1"})
    usage = {"policy_model": replay["_gym"]["usage"]}
    assert meter.rollout(usage).total_usd > 0
    assert meter.rollout(billed_usage(usage, second.saved_usage_by_server)).total_usd == 0.0
    assert billed_usage(usage, first.saved_usage_by_server) == usage

    with cache_scope(
        sample=1
    ) as other_repeat:  # the second of num_repeats samples is its own sample
        await agent.run(row)
    assert other_repeat.misses == 2 and standin.app["stats"]["ok"] == 4
    cache.close()


async def test_failed_calls_are_not_cached(tmp_path, session, standin):
    cache = ResponseCache(tmp_path / "responses.sqlite")
    inner = OpenAIClient(session, base_url=standin.url, api_key="wrong-key", model="stand-in-1")
    client = CachingClient(inner, cache, standin.url, "stand-in-1")
    for _ in range(2):
        with pytest.raises(Exception, match="(?i)api key|401|unauthori"):
            await client.create({"input": "x"})
    assert cache.stats()["entries"] == 0
    cache.close()
