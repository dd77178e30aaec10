"""The servers a run starts for NeMo Gym processes (our models on loopback, the head server) refuse
browser pages from elsewhere exactly as `gym-run serve` does (servers/netguard.py), over real HTTP:
a page could otherwise make the user's browser spend the plan's key through them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from gym_run.secrets import server_specs
from gym_run.servers.launch import start_servers
from gym_run.servers.registry import Servers

from tests.test_nemo_attribution import agent_plan

JSON = {"Content-Type": "application/json"}
# (headers, status) as tests/test_serve_hardening.py asks of `gym-run serve`
CASES = [
    (JSON, 200),
    ({"Content-Type": "text/plain;charset=UTF-8"}, 415),
    ({"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403),
    ({**JSON, "Sec-Fetch-Site": "cross-site"}, 403),
    ({**JSON, "Host": "evil.example"}, 421),
    ({**JSON, "Host": "localhost"}, 200),
]


@pytest.fixture
async def run_servers(tmp_path: Path) -> AsyncIterator[tuple[Servers, dict]]:
    """A plan with NeMo Gym processes started as a run starts it; with the head's config (what
    the processes read: every server's address, our loopback model included)."""
    plan = agent_plan(tmp_path, rows=1)
    async with aiohttp.ClientSession() as session:
        servers = await start_servers(plan, server_specs(plan), session, log_dir=tmp_path / "logs")
        try:
            async with session.get(servers.head.url + "/global_config_dict_yaml") as resp:
                config = yaml.safe_load(await resp.json())
            yield servers, config
        finally:
            await servers.close()


async def _status(method: str, url: str, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http:
        body = b'{"input": "hi"}' if method == "POST" else None
        async with http.request(method, url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status


async def test_the_loopback_model_refuses_browser_pages_from_elsewhere(run_servers):
    _servers, config = run_servers
    model = config["policy_model"]["responses_api_models"]["stand_in_model"]
    url = f"http://{model['host']}:{model['port']}/v1/responses"
    got = [await _status("POST", url, headers) for headers, _ in CASES]
    assert got == [status for _, status in CASES]


async def test_the_runs_head_server_refuses_browser_pages_from_elsewhere(run_servers):
    """The head shows every server's address: a rebound page must not read it either."""
    servers, _config = run_servers
    url = servers.head.url + "/global_config_dict_yaml"
    assert await _status("GET", url, {}) == 200
    assert await _status("GET", url, {"Host": "evil.example"}) == 421
    assert await _status("GET", url, {"Sec-Fetch-Site": "cross-site"}) == 403
    assert await _status("GET", url, {"Origin": "http://evil.example"}) == 403
