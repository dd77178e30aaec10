"""gym_run.servers.head + nemo_config: NeMo Gym's head endpoints over real HTTP on loopback."""

from __future__ import annotations

import json

import aiohttp
import yaml
from gym_run.servers.head import HeadServer, instance_entry
from gym_run.servers.nemo_config import config_yaml, nemo_global_config

SERVERS = {
    "policy_model": {
        "type": "responses_api_models",
        "implementation": "openai_model",
        "config": {"model": "gpt-x", "api_key": {"$secret": "policy_api_key"}},
    },
    "weather": {
        "type": "resources_servers",
        "implementation": "example_single_tool_call",
        "config": {"entrypoint": "app.py", "domain": "agent", "note": "costs ${price}"},
    },
    "agent": {
        "type": "responses_api_agents",
        "implementation": "simple_agent",
        "config": {
            "resources_server": {"type": "resources_servers", "name": "weather"},
            "model_server": {"type": "responses_api_models", "name": "policy_model"},
            "url": "http://127.0.0.1:9",
        },
    },
}


def test_global_config_shape():
    addresses = {"policy_model": ("127.0.0.1", 1001), "weather": ("127.0.0.1", 1002)}
    config = nemo_global_config(
        SERVERS, addresses, ("127.0.0.1", 1000), extra={"x": 1, "dry_run": True}
    )
    assert config["head_server"] == {"host": "127.0.0.1", "port": 1000}
    assert config["dry_run"] is False and config["x"] == 1
    model = config["policy_model"]["responses_api_models"]["openai_model"]
    assert model["api_key"] == "****"  # a secret reference never becomes a value here
    assert (model["host"], model["port"], model["entrypoint"]) == ("127.0.0.1", 1001, "app.py")
    assert "agent" not in config  # no address: nobody could reach it
    assert SERVERS["policy_model"]["config"]["api_key"] == {"$secret": "policy_api_key"}


def test_yaml_escapes_interpolation():
    text = config_yaml({"a": {"b": "costs ${price}"}})
    assert "\\${price}" in text
    assert yaml.safe_load(text) == {"a": {"b": "costs \\${price}"}}


async def test_head_endpoints():
    head = HeadServer()
    await head.start("127.0.0.1", 0)
    try:
        config = nemo_global_config(
            SERVERS,
            {"weather": ("127.0.0.1", 1002), "agent": ("127.0.0.1", 1003)},
            head.address,
        )
        head.set_config(config)
        head.set_instances(
            [
                instance_entry(
                    "weather",
                    "resources_servers",
                    "example_single_tool_call",
                    ("127.0.0.1", 1002),
                    pid=7,
                )
            ]
        )
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{head.url}/global_config_dict_yaml") as resp:
                assert resp.status == 200
                # NeMo Gym's client: json.loads the body, then the YAML inside it
                loaded = yaml.safe_load(json.loads(await resp.text()))
            assert loaded["head_server"] == {"host": "127.0.0.1", "port": head.address[1]}
            agent = loaded["agent"]["responses_api_agents"]["simple_agent"]
            assert (agent["host"], agent["port"]) == ("127.0.0.1", 1003)
            assert "url" not in agent
            async with http.get(f"{head.url}/server_instances") as resp:
                rows = await resp.json()
            assert rows[0]["url"] == "http://127.0.0.1:1002" and rows[0]["pid"] == 7
            async with http.get(f"{head.url}/readyz") as resp:
                assert resp.status == 503
            head.mark_ready()
            async with http.get(f"{head.url}/readyz") as resp:
                assert resp.status == 200
            async with http.get(f"{head.url}/") as resp:
                assert (await resp.json()) == {"status": "ok"}
    finally:
        await head.close()
