"""Secrets (issue 13, point 6): masked in every output whatever their length or shape, also when an
endpoint echoes them in a valid 200; credential headers are references in the plan; GYM061 never
prints a secret typed on the command line. Subprocess CLIs against endpoints on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import compile_openai, endpoint, env, no_crash, openai_world, response, run

KEY = "plainkey" + uuid.uuid4().hex[:12]  # does not look like a credential at all
HEADER_TOKEN = "hdr" + uuid.uuid4().hex[:12]


def _echo(_path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A valid answer quoting what it was sent: the header, the raw key, its \\u and base64 forms."""
    auth = headers.get("Authorization", "")
    key = auth.removeprefix("Bearer ")
    escaped = "".join(f"\\u{ord(c):04x}" for c in key)
    text = (
        f"you sent {auth} and {json.dumps(headers)}; b64 {base64.b64encode(auth.encode()).decode()}"
    )
    answer = response(text)
    answer["metadata"] = {"echo": key, key: "as a key too"}
    answer["instructions"] = "ESCAPED"
    return 200, json.dumps(answer).replace('"ESCAPED"', f'"{escaped}"').encode()  # type: ignore[return-value]


def _scan(root: Path, texts: list[str], secrets: list[str]) -> int:
    """Every file under root (but env.yaml, the input) and every printed text: no secret form."""
    forms = []
    for secret in secrets:
        forms += [secret, base64.b64encode(f"Bearer {secret}".encode()).decode()[:16]]
    scanned = 0
    for path in root.rglob("*"):
        if path.is_file() and path.name != "env.yaml":
            data = path.read_bytes().decode("utf-8", "replace")
            for form in forms:
                assert form not in data, f"{form!r} leaked into {path.relative_to(root)}"
            scanned += 1
    for text in texts:
        for form in forms:
            assert form not in text, f"{form!r} leaked into output: {text[:500]}"
    return scanned


def _serve_answer(root: Path, body: dict[str, Any]) -> str:
    """POST to the served model route of plan.json; the answer as text."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", "serve", "plan.json"],
        cwd=root,
        env=env(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            if line.startswith("policy_model"):
                url = line.split()[-1]
            if line.startswith("serving"):
                break
        assert url, proc.stderr.read() if proc.stderr else ""
        request = urllib.request.Request(
            url.rstrip("/") + ("" if url.rstrip("/").endswith("/v1") else "/v1") + "/responses",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.read().decode()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_a_key_echoed_in_a_valid_200_is_masked_everywhere(tmp_path: Path) -> None:
    with endpoint(_echo) as echo:
        openai_world(tmp_path, echo.url, KEY)
        printed = []
        for tool, *args in (
            ("gym-compile", "model.yaml", "sw/simple_weather.yaml", "+limit=2", "-o", "plan.json"),
            ("gym-run", "plan.json"),
            ("gym-run", "export", "plan.json"),
            ("gym-run", "report", "results/simple_weather_simple_agent_rollouts.jsonl"),
            ("gym-run", "report", "--text", "results/simple_weather_simple_agent_rollouts.jsonl"),
        ):
            ran = run(tool, *args, cwd=tmp_path)
            no_crash(ran)
            assert ran.code == 0, (args, ran.err)
            printed.append(ran.text)
        assert echo.requests and all(
            h.get("Authorization") == f"Bearer {KEY}" for _p, h, _b in echo.requests
        )
        rollouts = (tmp_path / "results/simple_weather_simple_agent_rollouts.jsonl").read_text()
        assert "you sent Bearer ***" in rollouts  # the answer is kept, the key is not
        printed.append(_serve_answer(tmp_path, {"input": "hi"}))
        assert "you sent Bearer ***" in printed[-1]
    assert _scan(tmp_path, printed, [KEY]) >= 5


def test_a_short_key_is_masked_as_a_word_and_a_tiny_one_is_warned_about(tmp_path: Path) -> None:
    short = "Qz9" + uuid.uuid4().hex[:2]  # 5 characters
    with endpoint(_echo) as echo:
        openai_world(tmp_path, echo.url, short)
        assert compile_openai(tmp_path, "+limit=1", plan="p.json").code == 0
        ran = run("gym-run", "p.json", "-q", cwd=tmp_path)
        assert ran.code == 0, ran.err
        rollouts = (tmp_path / "results/simple_weather_simple_agent_rollouts.jsonl").read_text()
        assert short not in rollouts and "Bearer ***" in rollouts
        (tmp_path / "env.yaml").write_text(f"policy_base_url: {echo.url}\npolicy_api_key: ab1\n")
        ran = run("gym-run", "p.json", "-q", "--overwrite", cwd=tmp_path)
        assert "secret 'policy_api_key' is shorter than 4 characters" in ran.err


def test_credential_headers_are_references_and_still_sent(tmp_path: Path) -> None:
    headers = (
        "      default_headers:\n        api-key: literalheaderkey1\n"
        "        X-Org: ${oc.env:GYM_TEST_ORG}\n        X-Title: my-app\n"
    )
    with endpoint(lambda *_: (200, response("ok"))) as server:
        openai_world(tmp_path, server.url, KEY, extra_model=headers)
        extra = {"GYM_TEST_ORG": HEADER_TOKEN}
        ran = compile_openai(tmp_path, "+limit=1", extra_env=extra)
        assert ran.code == 0 and "GYM060" in ran.err and "credential header 'api-key'" in ran.err
        plan_text = (tmp_path / "plan.json").read_text()
        assert "literalheaderkey1" not in plan_text and HEADER_TOKEN not in plan_text
        config = json.loads(plan_text)["servers"]["policy_model"]["config"]["default_headers"]
        assert config["X-Title"] == "my-app" and config["X-Org"] == {"$secret": "GYM_TEST_ORG"}
        assert set(config["api-key"]) == {"$secret"}
        ran = run("gym-run", "plan.json", "-q", cwd=tmp_path, extra_env=extra)
        assert ran.code == 0, ran.err
        sent = server.requests[0][1]
        assert sent["api-key"] == "literalheaderkey1" and sent["X-Org"] == HEADER_TOKEN


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_gym061_never_prints_a_command_line_secret(tmp_path: Path, fmt: str) -> None:
    openai_world(tmp_path, "http://127.0.0.1:9/v1", "unused-key")
    (tmp_path / "env.yaml").write_text("policy_base_url: http://127.0.0.1:9/v1\n")
    secret = "hunter" + uuid.uuid4().hex[:6]  # nothing like sk-... with 20 characters
    path = "+policy_model.responses_api_models.openai_model.api_key"
    for args in ([f"{path}={secret}"], [f"+policy_api_key={secret}"]):
        ran = run(
            "gym-compile",
            "model.yaml",
            "sw/simple_weather.yaml",
            *args,
            "--format",
            fmt,
            cwd=tmp_path,
        )
        no_crash(ran)
        assert ran.code == 1 and "GYM061" in ran.text and secret not in ran.text, ran.text
    ran = run(
        "gym-compile",
        "explain",
        path[1:],
        "model.yaml",
        "sw/simple_weather.yaml",
        f"+policy_api_key={secret}",
        cwd=tmp_path,
    )
    assert secret not in ran.text and "***" in ran.text
