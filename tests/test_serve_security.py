"""Servers we run listen on loopback unless asked, then demand a bearer token; bodies are bounded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from gym_run.servers.netguard import MAX_REQUEST_BYTES, TOKEN_ENV, RemoteBindRefused, is_loopback
from gym_run.servers.serve import start_serving
from gym_run.standin.faults import MAX_BODY_BYTES
from gym_run.standin.server import start_standin

from tests.conftest import REPO
from tests.runtime_helpers import seal, weather_plan, weather_row, write_plan

TOKEN = "serve-token-for-tests-0123456789"


def _can_bind(host: str) -> bool:
    try:
        with socket.socket() as sock:
            sock.bind((host, 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_a_config_host_beyond_loopback_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    plan = weather_plan(tmp_path, with_job=False)
    plan["servers"]["example_simple_weather"]["config"]["host"] = "0.0.0.0"
    with pytest.raises(RemoteBindRefused) as caught:
        await start_serving(seal(plan))
    assert "'example_simple_weather' on '0.0.0.0'" in caught.value.message
    assert "--allow-remote" in caught.value.message and caught.value.exit_code == 2
    with pytest.raises(RemoteBindRefused, match="needs a bearer token"):
        await start_serving(plan, allow_remote=True)  # allowed, but never without a token


async def test_every_request_needs_the_token_when_one_is_set(tmp_path: Path) -> None:
    served = await start_serving(weather_plan(tmp_path, with_job=False), token=TOKEN)
    try:
        async with aiohttp.ClientSession() as http:
            url = served.url("example_simple_weather") + "/get_weather"
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": TOKEN},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": f"Bearer {TOKEN}x"},
            ):
                async with http.post(url, json={"city": "sf"}, headers=headers) as resp:
                    body = await resp.json()
                    assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
                    assert set(body["error"]) == {"message", "type", "param", "code"}
                    assert "Authorization: Bearer <token>" in body["error"]["message"]
            async with http.post(
                url, json={"city": "sf"}, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as resp:
                assert resp.status == 200 and (await resp.json())["city"] == "sf"
            agent = served.url("simple_weather_simple_agent") + "/run"
            async with http.post(
                agent, json=weather_row(), headers={"Authorization": f"bearer {TOKEN}"}
            ) as resp:
                assert resp.status == 200 and (await resp.json())["reward"] == 1.0
    finally:
        await served.close()


@pytest.mark.skipif(not _can_bind("127.0.0.2"), reason="127.0.0.2 is not bindable on this machine")
async def test_allow_remote_with_a_token_listens_on_the_asked_address(tmp_path: Path) -> None:
    served = await start_serving(
        weather_plan(tmp_path, with_job=False), host="127.0.0.2", allow_remote=True, token=TOKEN
    )
    try:
        assert all(s.url.startswith("http://127.0.0.2:") for s in served.table)
        async with aiohttp.ClientSession() as http:
            async with http.post(
                served.url("example_simple_weather") + "/seed_session", json={}
            ) as resp:
                assert resp.status == 401
    finally:
        await served.close()


async def test_request_bodies_over_the_limit_are_413_in_the_official_shape(tmp_path: Path) -> None:
    served = await start_serving(weather_plan(tmp_path, with_job=False))
    try:
        async with aiohttp.ClientSession() as http:
            for name, route in (
                ("policy_model", "/v1/responses"),
                ("example_simple_weather", "/verify"),
                ("simple_weather_simple_agent", "/run"),
            ):
                data = b'{"x": "' + b"a" * MAX_REQUEST_BYTES + b'"}'
                async with http.post(
                    served.url(name) + route,
                    data=data,
                    headers={"Content-Type": "application/json"},
                ) as resp:
                    body = await resp.json()
                    assert resp.status == 413, (name, body)
                    assert f"at most {MAX_REQUEST_BYTES} bytes" in body["error"]["message"]
            async with http.get(served.url("example_simple_weather") + "/verify") as resp:
                assert (
                    resp.status == 405 and "not allowed" in (await resp.json())["error"]["message"]
                )
            async with http.post(served.url("policy_model") + "/nope", json={}) as resp:
                assert (
                    resp.status == 404
                    and "no route POST /nope" in (await resp.json())["error"]["message"]
                )
    finally:
        await served.close()


async def test_the_stand_in_refuses_to_listen_beyond_loopback_without_a_key() -> None:
    with pytest.raises(PermissionError, match="refusing to serve the stand-in"):
        await start_standin("0.0.0.0", 0)
    with pytest.raises(PermissionError):
        await start_standin("0.0.0.0", 0, allow_remote=True)  # remote needs a key, too
    assert MAX_BODY_BYTES == MAX_REQUEST_BYTES


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **extra}
    env.pop(TOKEN_ENV, None)
    env.update(extra)
    return env


def _gym_run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", *args],
        env=env or _env(),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_gym_run_serve_refuses_a_non_loopback_host_without_the_flag(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "plan.json", weather_plan(tmp_path, with_job=False))
    proc = _gym_run("serve", str(plan), "--host", "0.0.0.0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert (
        "gym-run: error: refusing to listen beyond this machine" in err and "--allow-remote" in err
    )
    proc = _gym_run("stand-in", "--host", "0.0.0.0", "--port", "0")
    out, err = proc.communicate(timeout=60)
    assert (
        proc.returncode == 1
        and "refusing to serve the stand-in without --api-key on '0.0.0.0'" in err
    )


def _serve_until_table(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("serving"):
        line = proc.stdout.readline()
        assert line, "".join(lines) + (proc.stderr.read() if proc.stderr else "")
        lines.append(line)
    return lines


@pytest.mark.parametrize("from_env", [False, True])
def test_require_token_prints_a_fresh_token_once_or_uses_the_environment(
    tmp_path: Path, from_env: bool
) -> None:
    plan = write_plan(tmp_path / "plan.json", weather_plan(tmp_path, with_job=False))
    env = _env(**{TOKEN_ENV: TOKEN}) if from_env else _env()
    proc = _gym_run("serve", str(plan), "--require-token", "--head-port", "0", env=env)
    try:
        lines = _serve_until_table(proc)
        token_lines = [line for line in lines if line.startswith("bearer token")]
        assert len(token_lines) == 1
        token = TOKEN if from_env else token_lines[0].rsplit(" ", 1)[1].strip()
        assert (TOKEN_ENV in token_lines[0]) is from_env and TOKEN not in "".join(
            lines
        )  # never echoed
        assert len(token) >= 32
        url = next(line.split()[-1] for line in lines if line.startswith("example_simple_weather"))

        def post(headers: dict[str, str]) -> int:
            request = urllib.request.Request(
                url + "/get_weather",
                data=json.dumps({"city": "sf"}).encode(),
                headers={"Content-Type": "application/json", **headers},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert post({}) == 401 and post({"Authorization": "Bearer nope"}) == 401
        assert post({"Authorization": f"Bearer {token}"}) == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
