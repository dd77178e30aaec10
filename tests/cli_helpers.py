"""Running gym-compile and gym-run as real subprocesses, and small servers on 127.0.0.1 that record
what they were sent (the hostile-input tests of issue 13)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, REPO

MODULES = {"gym-compile": "gym_compile.cli", "gym-run": "gym_run.cli"}


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def env(**extra: str) -> dict[str, str]:
    base = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")]),
        "NO_COLOR": "1",
    }
    for var in ("GYM_COMPILE_DEBUG", "GYM_RUN_DEBUG", "POLICY_API_KEY"):
        base.pop(var, None)
    return {**base, **extra}


def run(
    tool: str,
    *args: str,
    cwd: Path,
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
    stdin: Any = subprocess.DEVNULL,
) -> Ran:
    """One CLI run; a hang fails the test after `timeout` (a FIFO that blocks, /dev/zero)."""
    done = subprocess.run(
        [sys.executable, "-m", MODULES[tool], *args],
        cwd=cwd,
        env=env(**(extra_env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=stdin,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def no_crash(ran: Ran) -> None:
    """Neither a traceback nor our 'internal error' line."""
    assert "Traceback" not in ran.text, ran.text[-3000:]
    assert "internal error" not in ran.text, ran.text[-3000:]


def weather_world(root: Path) -> Path:
    """simple_weather with the stand-in, copied under root; returns root."""
    shutil.copytree(EXAMPLES / "simple_weather", root / "sw", dirs_exist_ok=True)
    return root


SW = ["sw/simple_weather.yaml", "sw/stand_in_model.yaml", "+agent_name=simple_weather_simple_agent"]


# ------------------------------------------------------------------ a recording endpoint


@dataclass
class Recorded:
    """What a server was sent; `answer(path, headers, body) -> (status, body)` decides the reply."""

    answer: Callable[[str, dict[str, str], dict[str, Any]], tuple[int, dict[str, Any]]]
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    url: str = ""


def response(text: str, *, output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A minimal valid Responses API answer with one assistant message (or the given output)."""
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "gpt-test",
        "output": output
        if output is not None
        else [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
    }


@contextmanager
def endpoint(
    answer: Callable[[str, dict[str, str], dict[str, Any]], tuple[int, dict[str, Any]]],
) -> Iterator[Recorded]:
    """An HTTP server on 127.0.0.1 answering POSTs with `answer`, recording every request."""
    recorded = Recorded(answer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            headers = dict(self.headers.items())
            recorded.requests.append((self.path, headers, body))
            status, reply = recorded.answer(self.path, headers, body)
            data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorded.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()


def openai_world(root: Path, base_url: str, key: str, extra_model: str = "") -> None:
    """simple_weather against an OpenAI-style endpoint, the key in env.yaml."""
    weather_world(root)
    (root / "model.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        "      base_url: ${policy_base_url}\n      api_key: ${policy_api_key}\n"
        "      model: gpt-test\n      retry: {max_attempts: 1}\n" + extra_model
    )
    (root / "env.yaml").write_text(
        f"policy_base_url: {base_url}\npolicy_api_key: {key}\n", encoding="utf-8"
    )


def compile_openai(
    root: Path, *args: str, plan: str = "plan.json", extra_env: dict[str, str] | None = None
) -> Ran:
    """gym-compile of openai_world's config under root, with `args`, into `plan`."""
    return run(
        "gym-compile",
        "model.yaml",
        "sw/simple_weather.yaml",
        *args,
        "-o",
        plan,
        cwd=root,
        extra_env=extra_env,
    )
