"""NeMo Gym servers of a plan in, their processes up and answering out (and down again, always).

Each server runs NeMo Gym's own code (`<source dir>/<entrypoint>`) in NeMo Gym's Python, in its
own session so a Ctrl-C in the terminal reaches gym-run only (gym-run decides when servers stop),
through `nemo_launch.py` (the watchdog that takes the server's whole process group down when
gym-run is gone, even after `kill -9`, and no Ray cluster). Output goes to one log file per server.
A server that exits or never answers is one clear line with the tail of its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp

from gym_run.defaults import plan_default
from gym_run.errors import ServerStartError
from gym_run.servers.nemo_config import Address, url_of

PYTHON_ENV = "NEMO_GYM_PYTHON"
LAUNCHER = Path(__file__).with_name("nemo_launch.py")
#: the plan's nemo_gym.startup_timeout_s when it is left out (schemas/plan.schema.json states it)
DEFAULT_STARTUP_TIMEOUT_S = float(plan_default("nemo_gym", "startup_timeout_s"))
STOP_GRACE_S = 3.0
#: How long a server that refuses connections while its process runs may take to exit (a server
#: shutting down closes its socket first) before it counts as gone anyway.
DYING_WAIT_S = 5.0
_PROBE_S = 1.0
_POLL_S = 0.05
_TAIL_LINES = 3
_TAIL_CHARS = 600
_MISSING_MODULE = "No module named"  # Python's ModuleNotFoundError, as a server's log shows it


class ServerDied(ServerStartError):
    """A NeMo Gym server exited (or never answered) while gym-run needed it."""


def nemo_python(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """NeMo Gym's interpreter: the plan's `nemo_gym.python`, else $NEMO_GYM_PYTHON, else this one
    when it can import nemo_gym. The one line says how to name it otherwise."""
    env = os.environ if environ is None else environ
    for value, origin in ((configured, "nemo_gym.python"), (env.get(PYTHON_ENV), PYTHON_ENV)):
        if value:
            if not os.access(value, os.X_OK) or os.path.isdir(value):
                raise ServerStartError(
                    f"{origin} names {value}, which is not an executable Python; point it at the "
                    "python of an environment with nemo-gym installed"
                )
            return value
    if importlib.util.find_spec("nemo_gym") is not None:
        return sys.executable
    raise ServerStartError(
        "this plan runs NeMo Gym's own servers, but no Python with nemo-gym is named: set "
        f"nemo_gym: {{python: /path/to/venv/bin/python}} in the config, or {PYTHON_ENV}, or "
        "install nemo-gym where gym-run runs"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (the server binds it a moment later, as NeMo Gym's own ng_run does)."""
    return free_ports([host])[0]


def addresses_for(hosts: Mapping[str, str], ports: Mapping[str, int | None]) -> dict[str, Address]:
    """Each server's (host, port): its configured port, else a free one (distinct within a plan)."""
    unset = [name for name in hosts if not ports.get(name)]
    picked = dict(zip(unset, free_ports([hosts[name] for name in unset]), strict=True))
    return {name: (host, ports.get(name) or picked[name]) for name, host in hosts.items()}


def free_ports(hosts: Sequence[str]) -> list[int]:
    """A distinct port free right now on each host: every socket is held until all are picked, so
    two servers of one plan never get the same port (a closed port may be handed out again)."""
    with contextlib.ExitStack() as held:
        ports = []
        for host in hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = held.enter_context(socket.socket(family))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@dataclass(frozen=True)
class ProcessSpec:
    """One NeMo Gym server to start: its instance name, kind, where its code is and its address."""

    name: str
    server_type: str
    implementation: str
    dir: Path
    entrypoint: str
    address: Address


@dataclass
class _Running:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.time)


class NemoProcesses:
    """The NeMo Gym server processes of one run; `stop()` (idempotent) ends every one of them."""

    def __init__(self, python: str, log_dir: Path, *, lazy_ray: bool = True) -> None:
        self.python = python
        self.log_dir = log_dir
        self.lazy_ray = lazy_ray
        self.running: dict[str, _Running] = {}
        self._watchdog_w: int | None = None
        self._stopping = False
        self._monitor: asyncio.Task[None] | None = None
        self._on_death: Callable[[str], None] | None = None
        self._reported: set[str] = set()
        self._settling: asyncio.Task[None] | None = None

    def pid(self, name: str) -> int:
        return self.running[name].proc.pid

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{_safe(name)}.log"

    def start(
        self, specs: list[ProcessSpec], config_yaml: str, environ: Mapping[str, str] | None = None
    ) -> None:
        """Spawns every server (not waiting for them); on a failure to spawn, stops what started."""
        if not specs:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        read_end, self._watchdog_w = os.pipe()
        base = dict(os.environ if environ is None else environ)
        try:
            for spec in specs:
                self._spawn(spec, config_yaml, base, read_end)
        except BaseException:
            self._kill_all(signal.SIGKILL)
            raise
        finally:
            os.close(read_end)

    def _spawn(
        self, spec: ProcessSpec, config_yaml: str, base: dict[str, str], read_end: int
    ) -> None:
        entry = spec.dir / spec.entrypoint
        if not entry.is_file():
            raise ServerStartError(
                f"server {spec.name!r}: NeMo Gym's {spec.implementation} has no {entry}; "
                "recompile with the NeMo Gym tree this plan was compiled against"
            )
        env = {
            **base,
            "NEMO_GYM_CONFIG_DICT": config_yaml,
            "NEMO_GYM_CONFIG_PATH": spec.name,
            "PYTHONPATH": os.pathsep.join(p for p in (str(spec.dir), base.get("PYTHONPATH")) if p),
            "PYTHONUNBUFFERED": "1",
            "GYM_RUN_WATCHDOG_FD": str(read_end),
        }
        if self.lazy_ray:
            env["GYM_RUN_LAZY_RAY"] = "1"
        log_path = self.log_path(spec.name)
        log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - the child writes it; closed below
        try:
            log.write(
                f"==== gym-run {time.strftime('%Y-%m-%d %H:%M:%S')}: {spec.server_type}/"
                f"{spec.implementation} as {spec.name!r} on {url_of(spec.address)}\n".encode()
            )
            log.flush()
            try:
                proc = subprocess.Popen(
                    [self.python, str(LAUNCHER), str(entry)],
                    cwd=spec.dir,  # as ng_run: the server's own folder
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(read_end,),
                    start_new_session=True,
                )
            except OSError as exc:
                raise ServerStartError(
                    f"server {spec.name!r}: cannot run {self.python}: {exc.strerror or exc}"
                ) from None
        finally:
            log.close()
        self.running[spec.name] = _Running(spec, proc, log_path)

    async def wait_ready(
        self, session: aiohttp.ClientSession, timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    ) -> None:
        """Until every server answers HTTP; a server that exits or is still silent after
        `timeout_s` is a ServerDied naming it, with its log's last lines."""
        deadline = time.monotonic() + timeout_s
        await asyncio.gather(
            *(self._wait_one(r, session, deadline, timeout_s) for r in self.running.values())
        )

    async def _wait_one(
        self, run: _Running, session: aiohttp.ClientSession, deadline: float, timeout_s: float
    ) -> None:
        url = url_of(run.spec.address) + "/"
        probe = aiohttp.ClientTimeout(total=2)
        while True:
            code = run.proc.poll()
            if code is not None:
                raise ServerDied(self.death_line(run.spec.name, code, "while starting"))
            try:
                async with session.get(url, timeout=probe) as resp:
                    await resp.read()
                    return  # any HTTP answer: it listens (NeMo Gym checks the same way)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServerDied(
                    f"server {run.spec.name!r} ({run.spec.server_type}/{run.spec.implementation}) "
                    f"did not answer on {url} within {timeout_s:g} s; "
                    + self._tail_text(run.spec.name)
                )
            await asyncio.sleep(_POLL_S)

    def death_line(self, name: str, code: int, when: str) -> str:
        spec = self.running[name].spec
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return (
            f"server {name!r} ({spec.server_type}/{spec.implementation}) {how} {when}; "
            + self._tail_text(name)
            + self._requirements_hint(name)
        )

    def _requirements_hint(self, name: str) -> str:
        """A module missing in a server with a requirements.txt: NeMo Gym's ng_run installs that
        file into a virtualenv of the server's own, gym-run runs every server in one Python."""
        requirements = self.running[name].spec.dir / "requirements.txt"
        if not requirements.is_file():
            return ""
        if not any(_MISSING_MODULE in line for line in tail(self.log_path(name), 30)):
            return ""
        return (
            f"; NeMo Gym would install {requirements} into a virtualenv of this server's own: "
            f"install the packages it lists into {self.python}"
        )

    def _tail_text(self, name: str) -> str:
        path = self.log_path(name)
        lines = tail(path)
        shown = " | ".join(lines) if lines else "(nothing)"
        if len(shown) > _TAIL_CHARS:
            shown = "…" + shown[-_TAIL_CHARS:]
        return f"its log {path} ends: {shown}"

    def watch(self, on_death: Callable[[str], None], interval_s: float = 0.2) -> None:
        """From now on, a server that exits before `stop()` is reported once through `on_death`."""
        self._on_death = on_death

        async def loop() -> None:
            while not self._stopping:
                self.check()
                await asyncio.sleep(interval_s)

        self._monitor = asyncio.get_running_loop().create_task(loop())

    def check(self) -> None:
        """Reports a server that has exited since the last look (once each)."""
        if self._on_death is None or self._stopping:
            return
        for name, run in self.running.items():
            code = run.proc.poll()
            if code is not None and name not in self._reported:
                self._reported.add(name)
                self._on_death(self.death_line(name, code, "during the run"))

    async def settle(self, wait_s: float | None = None) -> None:
        """After a failed rollout: reports a server that exited (as `check`), and one that refuses
        connections while its process still runs: it is on its way out (its socket closes before
        it exits, and the rollouts that follow would fail at once, faster than the exit shows),
        so it is waited for, up to `wait_s`, and reported either way. Callers that arrive while
        a look is under way wait for that one."""
        self.check()
        if self._on_death is None or self._stopping:
            return
        if self._settling is None or self._settling.done():
            wait = DYING_WAIT_S if wait_s is None else wait_s
            self._settling = asyncio.get_running_loop().create_task(self._settle(wait))
        look = self._settling
        try:
            await asyncio.shield(look)
        except asyncio.CancelledError:
            if not look.cancelled():  # the caller itself is cancelled, not the look (`stop`)
                raise

    async def _settle(self, wait_s: float) -> None:
        for name, run in self.running.items():
            if name in self._reported or run.proc.poll() is not None:
                continue
            if not await _refuses(run.spec.address):
                continue
            deadline = time.monotonic() + wait_s
            while run.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(_POLL_S)
            if self._stopping or name in self._reported:
                continue
            code = run.proc.poll()
            self._reported.add(name)
            assert self._on_death is not None
            if code is not None:
                self._on_death(self.death_line(name, code, "during the run"))
            else:
                self._on_death(
                    f"server {name!r} ({run.spec.server_type}/{run.spec.implementation}) stopped "
                    f"answering on {url_of(run.spec.address)} during the run (its process "
                    f"{run.proc.pid} still runs); " + self._tail_text(name)
                )

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM to every server's process group, SIGKILL to what is left after `grace_s`."""
        self.check()  # one that died since the last look still counts
        self._stopping = True
        if self._settling is not None:
            self._settling.cancel()
            self._settling = None
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None
        if self._watchdog_w is not None:
            os.close(self._watchdog_w)  # the launchers see EOF: a second way down for everyone
            self._watchdog_w = None
        self._kill_all(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(
            r.proc.poll() is None for r in self.running.values()
        ):
            await asyncio.sleep(_POLL_S)
        self._kill_all(signal.SIGKILL)
        for run in self.running.values():
            try:
                run.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass

    def _kill_all(self, sig: signal.Signals) -> None:
        for run in self.running.values():
            _killpg(run.proc, sig)
            for pid in session_members(run.proc.pid):
                _kill(pid, sig)


def _killpg(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """The server's whole group (it leads its own session): what it started goes with it."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def session_members(sid: int) -> list[int]:
    """The live processes of session `sid`. What a server starts in a process group of its own
    (Ray's workers put themselves in one) leaves its group but stays in its session, which the
    server leads. Read from /proc (Linux); elsewhere none are found and the groups alone go."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[-1].split()  # state ppid pgrp session ...
        if len(fields) > 3 and fields[0] != "Z" and fields[3] == str(sid):
            found.append(int(entry))
    return found


async def _refuses(address: Address) -> bool:
    """True when nothing listens at `address` any more (the connection is refused); a connection
    that opens, or one that times out (a busy server), is not a refusal."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), _PROBE_S)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return False


def tail(path: Path, lines: int = _TAIL_LINES) -> list[str]:
    """The last non-empty lines of a log (read from its end: logs can be large)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return kept[-lines:]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "server"
