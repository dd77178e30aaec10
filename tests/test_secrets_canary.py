"""A unique secret goes in; not one byte printed or written by any command may carry it.

Two canaries: the policy api key in env.yaml, and a token in the process environment reached
through `${oc.env:...}` (sent as a default header). Every CLI runs as a real subprocess against
real loopback servers: a stand-in that wants another key (401, echoing a masked key) and a
hostile endpoint that echoes every request header back in its error bodies. Afterwards every
file under the work directory and everything printed is scanned for the canaries, raw and
base64-encoded.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from gym_run.errors import EXIT_ENDPOINT_DOWN, EXIT_SOME_FAILED

from tests.conftest import EXAMPLES, REPO

KEY = "sk-canary-" + uuid.uuid4().hex
TOKEN = "tok-canary-" + uuid.uuid4().hex
ENV_KEY = "sk-envwins-" + uuid.uuid4().hex  # POLICY_API_KEY in the environment: wins over env.yaml
PLAIN = "plaincanary" + uuid.uuid4().hex  # a secret that does not look like one (no sk- prefix)
TOKEN_VAR = "GYM_CANARY_TOKEN"

#: a run whose every call fails: 3 (failures recorded) or 7 (the circuit breaker stopped it)
STOPPED_OR_FAILED = {EXIT_SOME_FAILED, EXIT_ENDPOINT_DOWN}


def _forms(secret: str) -> list[str]:
    """The secret, its URL-quoted form, its hex core, and base64 of it at every alignment."""
    core = secret.rsplit("-", 1)[-1][-32:]
    forms = {secret, urllib.parse.quote(secret, safe=""), core}
    for text in (secret, f"Bearer {secret}", core):
        for pad in range(3):
            encoded = base64.b64encode(b"x" * pad + text.encode()).decode()
            forms.add(encoded[4 if pad else 0 : -4])  # the stable middle, whatever surrounds it
    return sorted(f for f in forms if len(f) >= 12)


FORMS = {
    name: _forms(value)
    for name, value in (
        ("api key", KEY),
        ("token", TOKEN),
        ("env api key", ENV_KEY),
        ("plain-looking key", PLAIN),
    )
}


def assert_clean(where: str, data: str | bytes) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for name, forms in FORMS.items():
        for form in forms:
            assert form not in text, f"the {name} canary leaked into {where} (as {form!r})"


def scan_tree(root: Path) -> int:
    """Every byte of every file under root, except the inputs the test itself wrote."""
    scanned = 0
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (path.name.startswith("env") and path.suffix == ".yaml"):
            assert_clean(str(path.relative_to(root)), path.read_bytes())
            scanned += 1
    return scanned


class _Echo(BaseHTTPRequestHandler):
    """A hostile endpoint: the mode in its path decides how it echoes every header it was sent."""

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        echoed = f"you sent Authorization: {headers.get('Authorization')} and headers {json.dumps(headers)}"
        mode = self.path.split("/")[1]
        if mode == "e401":
            self._send(
                401, json.dumps({"error": {"message": echoed, "type": "invalid_request_error"}})
            )
        elif mode == "e400":
            self._send(400, json.dumps({"message": echoed}))
        elif mode == "e500":
            self._send(500, echoed, "text/plain")
        elif mode == "e404":
            self._send(404, json.dumps({"error": echoed}))
        else:  # a 200 that is not JSON: the malformed-body path quotes a snippet of it
            self._send(200, echoed + " " + base64.b64encode(echoed.encode()).decode(), "text/plain")

    def _send(self, status: int, body: str, kind: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_echo")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class World:
    """The work directory, the environment every command runs with, and all that was printed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            TOKEN_VAR: TOKEN,
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
        self.env.pop("POLICY_API_KEY", None)
        self.printed: list[tuple[str, str]] = []

    def run(
        self,
        tool: str,
        *args: str,
        expect: set[int] | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        module = {"gym-compile": "gym_compile.cli", "gym-run": "gym_run.cli"}[tool]
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        where = f"{tool} {' '.join(args)}"
        self.printed.append((where, done.stdout + done.stderr))
        assert_clean(f"the output of {where}", done.stdout + done.stderr)
        assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr}"
        if expect is not None:
            assert done.returncode in expect, (
                f"{where} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def run_all(self, calls: list[tuple[str, tuple[str, ...], set[int]]]) -> None:
        """Independent commands at once (each still checked and scanned): subprocess start-up is the cost."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            for done in [
                pool.submit(self.run, tool, *args, expect=expect) for tool, args, expect in calls
            ]:
                done.result()

    def compile(self, plan: str, base_url: str, *extra: str) -> None:
        self.run(
            "gym-compile",
            "model.yaml",
            "simple_weather.yaml",
            f"+policy_base_url={base_url}",
            f"+output_jsonl_fpath=out/{plan}.jsonl",
            "--env",
            "env.yaml",
            "-o",
            f"{plan}.json",
            *extra,
            expect={0},
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("canary")
    (root / "data").mkdir()
    (root / "data" / "example.jsonl").write_bytes(
        (EXAMPLES / "simple_weather/data/example.jsonl").read_bytes()
    )
    (root / "simple_weather.yaml").write_bytes(
        (EXAMPLES / "simple_weather/simple_weather.yaml").read_bytes()
    )
    (root / "env.yaml").write_text(
        f"policy_base_url: http://127.0.0.1:9/v1\npolicy_api_key: {KEY}\npolicy_model_name: gpt-canary\n"
    )
    (root / "model.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        "      base_url: ${policy_base_url}\n      api_key: ${policy_api_key}\n"
        "      model: ${policy_model_name}\n"
        f"      default_headers: {{X-Canary-Token: '${{oc.env:{TOKEN_VAR}}}'}}\n"
        "      retry: {max_attempts: 2, initial_delay_s: 0.01, max_delay_s: 0.01}\n"
    )
    return World(root)


def _start_standin(world: World, key: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", "stand-in", "--port", "0", "--api-key", key],
        cwd=world.root,
        env=world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, line + proc.stderr.read() if proc.stderr else line
    yield line.rsplit(" ", 1)[1].strip()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    world.printed.append(("gym-run stand-in", line + out + err))
    assert_clean("the stand-in's output", line + out + err)


@pytest.fixture(scope="module")
def standin(world: World) -> Iterator[str]:
    """`gym-run stand-in` wanting a key other than the canary: every call gets a 401."""
    yield from _start_standin(world, "sk-the-right-key-0000000000")


@pytest.fixture(scope="module")
def envwins_standin(world: World) -> Iterator[str]:
    """A stand-in that accepts only the key given in the environment (POLICY_API_KEY)."""
    yield from _start_standin(world, ENV_KEY)


def test_compile_and_its_inspection_commands_never_show_the_secrets(world: World) -> None:
    world.compile("plan", "http://127.0.0.1:9/v1")
    plan = json.loads((world.root / "plan.json").read_text())
    model = plan["servers"]["policy_model"]["config"]
    assert model["api_key"] == {"$secret": "policy_api_key"}
    assert model["default_headers"] == {"X-Canary-Token": {"$secret": TOKEN_VAR}}
    compile_args = ("model.yaml", "simple_weather.yaml", "--env", "env.yaml")
    calls: list[tuple[str, tuple[str, ...], set[int]]] = []
    for fmt in ("text", "json", "github", "sarif"):
        calls += [
            ("gym-compile", (*compile_args, "-o", f"plan-{fmt}.json", "--format", fmt, "-v"), {0}),
            (
                "gym-compile",
                ("lint", "model.yaml", "simple_weather.yaml", "env.yaml", "--format", fmt, "-v"),
                {0, 1},
            ),
            ("gym-compile", ("lint", "--set", *compile_args, "--format", fmt, "-v"), {0, 1}),
        ]
    # a broken config: diagnostics quote source lines, env.yaml's included
    calls += [
        (
            "gym-compile",
            (
                *compile_args,
                "+policy_model.responses_api_models.openai_model.bogus=1",
                "-o",
                "bad.json",
                "-v",
            ),
            {1},
        ),
        (
            "gym-compile",
            (
                *compile_args,
                "-o",
                "bad.json",
                "+policy_model.responses_api_models.openai_model.api_key=${policy_api_key}x",
            ),
            {0, 1},
        ),
    ]
    # env.yaml files that fail: diagnostics quote their lines, so secret-named values are masked there
    for n, broken in enumerate(
        (
            f"policy_api_key: !!int {PLAIN}\n",
            f"policy_api_key: {PLAIN}\npolicy_api_key: {PLAIN}\n",
            f"policy_api_key: {PLAIN}\npolicy_model_name: [x\n",
            f"x: {{policy_api_key: {PLAIN}, policy_base_url: 3}}\nx: 1\n",
        )
    ):
        (world.root / f"env_bad{n}.yaml").write_text(broken)
        for fmt in ("text", "json", "github", "sarif") if n == 0 else ("text",):
            calls += [
                (
                    "gym-compile",
                    (
                        "model.yaml",
                        "simple_weather.yaml",
                        "--env",
                        f"env_bad{n}.yaml",
                        "-o",
                        "bad.json",
                        "--format",
                        fmt,
                        "-v",
                    ),
                    {1},
                ),
                ("gym-compile", ("lint", f"env_bad{n}.yaml", "--format", fmt), {0, 1}),
            ]
    world.run_all(calls)
    key = "policy_model.responses_api_models.openai_model"
    for what in (key, f"{key}.api_key", f"{key}.default_headers", "policy_api_key"):
        out = world.run(
            "gym-compile",
            "explain",
            what,
            "model.yaml",
            "simple_weather.yaml",
            "--env",
            "env.yaml",
            expect={0},
        )
        assert "***" in out.stdout or what == key
    world.run(
        "gym-compile", "explain", f"{key}.api_keyy", "model.yaml", "--env", "env.yaml", expect={1}
    )
    world.run("gym-compile", "show", "plan.json", expect={0})
    world.compile("plan2", "http://127.0.0.1:8/v1", "+limit=2")
    world.run("gym-compile", "diff", "plan.json", "plan2.json", expect={1})
    world.run("gym-compile", "schema", expect={0})
    world.run("gym-compile", "schema", "--out", "schema", expect={0})
    assert scan_tree(world.root) >= 4


def test_runs_against_a_401_and_a_header_echoing_endpoint_never_record_the_secrets(
    world: World, standin: str, echo_url: str
) -> None:
    world.compile("p401", standin)
    done = world.run("gym-run", "p401.json", expect=STOPPED_OR_FAILED)
    assert "Incorrect API key" in done.stdout + done.stderr
    record = json.loads((world.root / "out/p401.jsonl").read_text().splitlines()[0])
    assert record["_gym"]["status"] == "failed" and record["_gym"]["error"]["status"] == 401
    out = world.run("gym-run", "check", "p401.json", expect={1})
    assert "key rejected" in out.stdout.lower() or "401" in out.stdout
    world.run("gym-run", "export", "p401.json", expect={3})

    def one_mode(mode: str) -> None:
        world.compile(mode, f"{echo_url}/{mode}/v1")
        world.run("gym-run", f"{mode}.json", expect=STOPPED_OR_FAILED)
        world.run("gym-run", "check", f"{mode}.json", expect={1})
        if mode == "e401":
            world.run(
                "gym-run",
                f"{mode}.json",
                "--resume",
                "--retry-failed",
                "-q",
                expect=STOPPED_OR_FAILED,
            )
            world.run("gym-run", "export", f"{mode}.json", "--overwrite", expect={3})
        failure = json.loads((world.root / f"out/{mode}.jsonl").read_text().splitlines()[0])
        assert "***" in failure["_gym"]["error"]["message"], failure["_gym"]["error"]

    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(one_mode, ("e401", "e400", "e404", "e500", "e200")))
    _report(world, "out/p401.jsonl")
    _report(world, "out/e401.jsonl")
    # asyncio's debug mode and Python's dev mode: the most verbose gym-run gets
    world.run(
        "gym-run",
        "e401.json",
        "--overwrite",
        expect=STOPPED_OR_FAILED,
        env={"PYTHONASYNCIODEBUG": "1", "PYTHONDEVMODE": "1", "GYM_COMPILE_DEBUG": "1"},
    )
    assert scan_tree(world.root) >= 10


def test_the_environment_variable_wins_over_env_yaml_and_is_kept_as_secret(
    world: World, envwins_standin: str
) -> None:
    """Documented rule: for an env.yaml secret, the variable KEY.upper() (POLICY_API_KEY) wins."""
    world.compile("wins", envwins_standin, "+response_cache={path: cache/responses.sqlite}")
    done = world.run("gym-run", "wins.json", expect={0}, env={"POLICY_API_KEY": ENV_KEY})
    assert "rollouts: 5 ok, 0 failed" in done.stdout
    world.run(
        "gym-run", "wins.json", "--overwrite", expect={0}, env={"POLICY_API_KEY": ENV_KEY}
    )  # cache hits
    world.run("gym-run", "check", "wins.json", expect={0}, env={"POLICY_API_KEY": ENV_KEY})
    from gym_run.cli import cli

    if "cache" in cli.commands:
        world.run("gym-run", "cache", "stats", "wins.json", expect={0})
    world.compile("wins", envwins_standin)
    world.run(
        "gym-run", "wins.json", "--overwrite", expect=STOPPED_OR_FAILED
    )  # env.yaml's key: 401
    _report(world, "out/wins.jsonl")
    scan_tree(world.root)


async def test_the_progress_display_and_notices_never_show_the_secrets(
    world: World, standin: str, echo_url: str
) -> None:
    import io

    from gym_run.collect.runner import run_job
    from gym_run.plan import load_plan

    world.compile("progress", f"{echo_url}/e500/v1")
    plan = load_plan(world.root / "progress.json")
    shown, notices = io.StringIO(), []
    environ = {k: v for k, v in world.env.items() if k != "POLICY_API_KEY"}
    result = await run_job(
        plan,
        existing="overwrite",
        environ=environ,
        progress_stream=shown,
        show_progress=True,
        notice=notices.append,
    )
    assert result.counts["failed"] == 5 and shown.getvalue()
    assert_clean("the progress display", shown.getvalue())
    assert_clean(
        "run notices", "\n".join(notices) + str(result.first_error) + json.dumps(result.metrics)
    )
    world.printed.append(("run_job progress", shown.getvalue() + "\n".join(notices)))


def _report(world: World, rollouts: str) -> None:
    from gym_run.cli import cli

    if "report" in cli.commands:
        world.run("gym-run", "report", rollouts, expect={0})
        world.run("gym-run", "report", rollouts, "--text", expect={0})
        return
    for extra in ((), ("--text",)):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from gym_run.cli.report import report_command as c; c(sys.argv[1:])",
                rollouts,
                *extra,
            ],
            cwd=world.root,
            env=world.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert_clean(f"report {rollouts}", done.stdout + done.stderr)


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _serve(world: World, plan: str) -> tuple[subprocess.Popen[str], dict[str, str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_run.cli", "serve", plan, "--head-port", "0"],
        cwd=world.root,
        env=world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    while not lines or not lines[-1].startswith("serving"):
        line = proc.stdout.readline()
        assert line, (proc.stderr.read() if proc.stderr else "") + "".join(lines)
        lines.append(line)
    urls = {row.split()[0]: row.split()[-1] for row in lines[1:-1] if row.strip()}
    return proc, urls, "".join(lines)


@pytest.mark.parametrize("plan", ["p401", "e401", "e500"])
def test_serve_answers_every_endpoint_without_the_secrets(
    world: World, standin: str, echo_url: str, plan: str
) -> None:
    if not (world.root / f"{plan}.json").exists():
        world.compile(plan, standin if plan == "p401" else f"{echo_url}/{plan}/v1")
    proc, urls, printed = _serve(world, plan + ".json")
    try:
        row = json.loads((world.root / "data/example.jsonl").read_text().splitlines()[0])
        answers = [
            _post(urls["policy_model"] + "/v1/responses", json.dumps({"input": "hi"}).encode()),
            _post(urls["policy_model"] + "/v1/responses", b"{not json"),
            _post(urls["simple_weather_simple_agent"] + "/run", json.dumps(row).encode()),
            _post(
                urls["simple_weather_simple_agent"] + "/v1/responses",
                json.dumps(row["responses_create_params"]).encode(),
            ),
            _post(urls["simple_weather_simple_agent"] + "/run", b"[]"),
            _post(urls["example_simple_weather"] + "/seed_session", b"{}"),
            _post(urls["example_simple_weather"] + "/get_weather", b'{"city": "sf"}'),
            _post(urls["example_simple_weather"] + "/nope", b"{}"),
            _post(urls["example_simple_weather"] + "/verify", b"{}"),
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    everything = printed + out + err + "".join(f"{status} {body}" for status, body in answers)
    world.printed.append((f"gym-run serve {plan}", everything))
    assert_clean(f"gym-run serve {plan}", everything)
    assert answers[0][0] >= 400
    # a failed rollout is answered as NeMo Gym's agents answer one: 200 and its failure keys
    assert answers[2][0] == 200 and json.loads(answers[2][1])["_ng_failure_class"]
    assert answers[6][0] == 200
    scan_tree(world.root)


def test_every_printed_byte_was_scanned(world: World) -> None:
    assert len(world.printed) >= 20
    for where, text in world.printed:
        assert_clean(where, text)
    scan_tree(world.root)
