"""The hostile inputs of issue 13 (files, plans, secrets, internal errors) as cases that run the
gym-compile / gym-run of any checkout and say what happened; benchmarks/bench_hostile.py prints them.

Each case returns an Outcome: a verdict (ok, or what went wrong: HANG, LEAK, REPLACED, SENT,
INTERNAL, TRACEBACK, FAILED) and the figures that matter for it (seconds, stderr bytes, peak RSS).
"""

from __future__ import annotations

import base64
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "simple_weather"
SW = ["sw/simple_weather.yaml", "sw/stand_in_model.yaml", "+agent_name=simple_weather_simple_agent"]
MEMORY_CAP = 2 << 30  # bytes of address space a case may take (the machine is shared)


@dataclass
class Outcome:
    verdict: str
    code: int | None = None
    seconds: float = 0.0
    stderr_bytes: int = 0
    peak_mb: float = 0.0
    note: str = ""


@dataclass
class Tools:
    """The CLIs of the checkout under test: its venv's bin directory."""

    bin: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        tool: str,
        *args: str,
        cwd: Path,
        timeout: float = 60,
        extra: dict[str, str] | None = None,
    ) -> tuple[Outcome, str]:
        """One CLI run under a memory cap; peak RSS from wait4 (the child alone)."""
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(self.bin / tool), *args],
            cwd=cwd,
            env={**os.environ, **self.env, **(extra or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP)),
        )
        out_chunks: list[bytes] = []
        err_chunks: list[bytes] = []
        readers = [
            threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
            threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
        ]
        for r in readers:
            r.start()
        hung = False
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                hung = True
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for r in readers:
            r.join(timeout=5)
        text = b"".join(out_chunks + err_chunks).decode("utf-8", "replace")
        err = b"".join(err_chunks)
        outcome = Outcome(
            "HANG" if hung else "ok",
            None if hung else proc.returncode,
            time.perf_counter() - started,
            len(err),
            usage.ru_maxrss / 1024,
        )
        if not hung and "Traceback (most recent call last)" in text:
            outcome.verdict = "TRACEBACK"
        elif not hung and "internal error" in text:
            outcome.verdict = "INTERNAL"
        return outcome, text


def world(root: Path) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copytree(EXAMPLE, root / "sw")
    return root


def make_device(path: Path) -> bool:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        return True
    except OSError:
        return False


def is_device(path: Path) -> bool:
    return stat.S_ISCHR(path.lstat().st_mode)


# ------------------------------------------------------------------ endpoints


class Endpoint:
    """An HTTP server on 127.0.0.1 recording requests; `reply(headers, body)` -> bytes of a 200."""

    def __init__(self, reply: Callable[[dict[str, str], dict[str, Any]], bytes]) -> None:
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                outer.requests.append(headers)
                data = reply(headers, json.loads(raw or b"{}"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(text: str) -> bytes:
    return json.dumps(
        {
            "id": "resp_1",
            "object": "response",
            "status": "completed",
            "model": "gpt-test",
            "output": [
                {
                    "type": "message",
                    "id": "m",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def openai_world(root: Path, base_url: str, key: str, extra: str = "") -> Path:
    world(root)
    (root / "model.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        "      base_url: ${policy_base_url}\n      api_key: ${policy_api_key}\n"
        "      model: gpt-test\n" + extra
    )
    (root / "env.yaml").write_text(f"policy_base_url: {base_url}\npolicy_api_key: {key}\n")
    return root


def rehash(tools: Tools, plan_path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """The attacker's edit, re-hashed with the checkout's own content_hash."""
    plan = json.loads(plan_path.read_text())
    edit(plan)
    plan_path.write_text(json.dumps(plan))
    code = (
        "import json,sys; from gym_compile.canonical import content_hash; p=json.load(open(sys.argv[1]));"
        "p['content_hash']=content_hash(p); json.dump(p, open(sys.argv[1],'w'))"
    )
    subprocess.run([str(tools.bin / "python"), "-c", code, str(plan_path)], check=True)


def secret_forms(secret: str) -> list[str]:
    return [secret, base64.b64encode(f"Bearer {secret}".encode()).decode()[:16]]


def leaked(root: Path, texts: list[str], secret: str) -> int:
    """Files under root (env.yaml aside) and printed texts that hold the secret."""
    hits = 0
    for path in root.rglob("*"):
        if path.is_file() and path.name != "env.yaml" and not path.is_symlink():
            data = path.read_bytes().decode("utf-8", "replace")
            hits += any(f in data for f in secret_forms(secret))
    return hits + sum(any(f in t for f in secret_forms(secret)) for t in texts)


def new_key(prefix: str = "plainkey") -> str:
    return prefix + uuid.uuid4().hex[:16]


def mount_full(where: Path, size_k: int, room_k: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "tmpfs", str(where)], capture_output=True
    ).returncode:
        return False
    with open(where / "filler", "wb", buffering=0) as fh:
        try:
            for _ in range((size_k - room_k) // 4):
                fh.write(b"x" * 4096)
        except OSError:
            pass
    return True


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def closed_stdout(tools: Tools, cwd: Path) -> Outcome:
    """`gym-compile explain-code | head -1` with the reader gone before the first write."""
    read, write = os.pipe()
    os.close(read)
    previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        proc = subprocess.run(
            [str(tools.bin / "gym-compile"), "explain-code"],
            cwd=cwd,
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write)
        signal.signal(signal.SIGPIPE, previous)
    err = proc.stderr.decode("utf-8", "replace")
    verdict = "TRACEBACK" if "Traceback" in err else "INTERNAL" if "internal error" in err else "ok"
    return Outcome(verdict, proc.returncode, stderr_bytes=len(proc.stderr))


# ------------------------------------------------------------------ the registry

Case = Callable[[Tools, Path], Outcome]
CASES: list[tuple[str, str, Case]] = []


def case(group: str, name: str) -> Callable[[Case], Case]:
    def add(fn: Case) -> Case:
        CASES.append((group, name, fn))
        return fn

    return add
