"""NeMo Gym's judges call a model server's `/v1/chat/completions` (`use_chat_completions_for_judge`,
the default of its simpleqa environment): gym-run's built-in model servers answer that route too,
on loopback for NeMo Gym's processes and under `gym-run serve`, with the same retries, cache and
counters as `/v1/responses`. Proven with real NeMo Gym (nemo-gym==0.4.0, tests/nemo_venv.py): its
simpleqa resources server as a process, its judge on gym-run's stand-in, its pydantic chat
completion model accepting what the stand-in answers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gym_run.collect.runner import run_job
from gym_run.endpoint.cache import CachingClient, ResponseCache
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.usage import normalise_usage
from gym_run.standin.server import start_standin

from tests.runtime_helpers import read_jsonl
from tests.test_nemo_run import STAND_IN, compile_nemo, nemo  # noqa: F401  (the fixture)

SIMPLEQA = "resources_servers/simpleqa"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def post(url: str, body: Any, key: str = "stand-in") -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {key}"}
        async with session.post(url, json=body, headers=headers) as resp:
            return resp.status, await resp.json()


async def test_the_stand_in_answers_chat_completions_like_a_model() -> None:
    standin = await start_standin(api_key="stand-in")
    url = f"{standin.url}/chat/completions"
    try:
        ask = {"role": "user", "content": "what's the weather in new york?"}
        status, first = await post(url, {"messages": [ask], "tools": [WEATHER_TOOL]})
        assert status == 200 and first["object"] == "chat.completion"
        choice = first["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        (call,) = choice["message"]["tool_calls"]
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "new york"}
        answer = {"role": "tool", "tool_call_id": call["id"], "content": '{"summary": "sunny"}'}
        messages = [ask, choice["message"], answer]
        status, second = await post(url, {"messages": messages, "tools": [WEATHER_TOOL]})
        assert second["choices"][0]["message"]["content"] == "sunny"
        assert second["choices"][0]["finish_reason"] == "stop"
        usage = second["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        schema = {"type": "object", "properties": {"grade": {"type": "string"}}}
        fmt = {"type": "json_schema", "json_schema": {"name": "g", "schema": schema}}
        _, shaped = await post(url, {"messages": [ask], "response_format": fmt})
        assert isinstance(json.loads(shaped["choices"][0]["message"]["content"]), dict)
        status, refused = await post(url, {"messages": []})
        assert status == 400 and refused["error"]["param"] == "messages"
        status, _ = await post(url, {"messages": [ask]}, key="wrong")
        assert status == 401
    finally:
        await standin.close()


async def test_the_client_calls_chat_with_retries_usage_and_its_own_cache_keys(tmp_path) -> None:
    from gym_run.standin.server import Faults

    standin = await start_standin(api_key="k", faults=Faults(server_error=0.5))
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        async with aiohttp.ClientSession() as session:
            client = OpenAIClient(session, base_url=standin.url, api_key="k", model="judge-1")
            cached = CachingClient(client, cache, standin.url, "judge-1")
            body = {"messages": [{"role": "user", "content": "grade this"}], "stream": True}
            answers = [await cached.chat(body) for _ in range(2)]
            await cached.create({"input": "grade this"})
        assert answers[0] == answers[1]  # the second from the cache
        assert normalise_usage(answers[0]["usage"])["input_tokens"] > 0  # chat's usage, read
        assert client.stats.calls == 2  # one chat call (whatever its retries), one Responses call
        assert standin.app["stats"]["chat"] == 1
    finally:
        cache.close()
        await standin.close()


CHAT_CHECK = """
import json, sys
from nemo_gym.openai_utils import NeMoGymChatCompletion
for line in sys.stdin:
    NeMoGymChatCompletion.model_validate(json.loads(line))
print("ok")
"""


async def test_nemo_gym_accepts_the_stand_ins_chat_completions(nemo) -> None:  # noqa: F811
    standin = await start_standin(api_key="stand-in")
    try:
        ask = {"role": "user", "content": "weather in paris?"}
        _, called = await post(
            f"{standin.url}/chat/completions", {"messages": [ask], "tools": [WEATHER_TOOL]}
        )
        _, said = await post(f"{standin.url}/chat/completions", {"messages": [ask]})
    finally:
        await standin.close()
    lines = "".join(json.dumps(answer) + "\n" for answer in (called, said))
    check = subprocess.run(
        [nemo[0], "-c", CHAT_CHECK], input=lines, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0 and check.stdout.strip() == "ok", check.stderr[-2000:]


async def run_simpleqa(release: tuple[str, Path], tmp_path: Path) -> None:
    """NeMo Gym's simpleqa (its servers as processes), its judge on gym-run's stand-in;
    `release`: (its Python, its tree)."""
    root = release[1]
    judge = tmp_path / "judge.yaml"
    judge.write_text(
        "genrm_model:\n  responses_api_models:\n    stand_in_model:\n      model: judge-1\n"
    )
    plan = compile_nemo(
        release,
        tmp_path,
        [root / SIMPLEQA / "configs" / "simpleqa.yaml", STAND_IN, judge],
        "+agent_name=simpleqa_simple_agent",
        f"+input_jsonl_fpath={root / SIMPLEQA / 'data' / 'example.jsonl'}",
        processes="auto",
    )
    assert plan["servers"]["simpleqa"]["run"] == "nemo"
    assert plan["servers"]["simpleqa"]["config"]["use_chat_completions_for_judge"] is True
    result = await run_job(plan, show_progress=False)
    records = read_jsonl(result.rollouts_path)
    assert result.counts["ok"] == len(records) > 0, result.first_error
    for record in records:
        # the judge's text is the stand-in's echo of NeMo Gym's judge prompt, whose grade list
        # ("A: CORRECT" first) NeMo Gym's parser then reads as A
        assert record["judge_output"].startswith("You said: ")
        assert "Gold target: " + record["expected_answer"] in record["judge_output"]
        assert record["reward"] == 1.0
    # each rollout: one policy call (in the record) and one judge call by NeMo Gym's server
    assert result.metrics["_gym"]["calls"]["calls"] == 2 * len(records)
    assert all(r["_gym"]["model_calls"] == 1 for r in records)


async def test_simpleqa_judges_through_chat_completions_under_gym_run(nemo, tmp_path) -> None:  # noqa: F811
    await run_simpleqa(nemo, tmp_path)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp sessions in these tests talk to 127.0.0.1 only."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


async def test_gym_run_serves_chat_completions_on_its_model_servers() -> None:
    """`gym-run serve`'s model route (servers/routes.py): NeMo Gym's servers pointed at it call
    chat completions too."""
    from aiohttp.test_utils import TestServer
    from gym_run.servers.builtin.models import stand_in_model
    from gym_run.servers.routes import model_app

    async with aiohttp.ClientSession() as session:
        model = await stand_in_model("judge", {"model": "judge-1"}, session)
        server = TestServer(model_app(model), host="127.0.0.1")
        await server.start_server()
        try:
            url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
            status, answer = await post(url, {"messages": [{"role": "user", "content": "hi"}]})
            assert status == 200 and answer["object"] == "chat.completion", answer
            assert answer["choices"][0]["message"]["content"] == "You said: hi"
            assert answer["model"] == "judge-1"
            # NeMo Gym >= 0.7 agents put the rollout in the path; the prefix is stripped
            for prefix in ("/ng-rollout/r-7", "/ng-rollout/r-7/training-token-capture"):
                for route in ("/v1/responses", "/v1/chat/completions"):
                    body = (
                        {"input": "hi"}
                        if route == "/v1/responses"
                        else {"messages": [{"role": "user", "content": "hi"}]}
                    )
                    url = f"http://127.0.0.1:{server.port}{prefix}{route}"
                    status, answer = await post(url, body)
                    assert status == 200 and "usage" in answer, (url, answer)
        finally:
            await server.close()
            await model.close()
