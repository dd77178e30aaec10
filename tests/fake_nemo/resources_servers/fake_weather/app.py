"""A resources server speaking NeMo Gym's protocol, started the way gym-run starts NeMo Gym's.

Not NeMo Gym's code: a small aiohttp app that reads NeMo Gym's environment (NEMO_GYM_CONFIG_DICT,
NEMO_GYM_CONFIG_PATH) to find its own address, so the process tests run without NeMo Gym
installed. Its `mode` decides how it misbehaves: ok, crash (at start), missing_module (an import
of a package it needs fails at start), hang (never listens), die_after (exits after N tool calls;
with linger_s, unreachable that long before it exits); `pid_file` says where it writes its pid; a
stray child process (`child: true`) shows that the whole process group goes down with it, and one
in a process group of its own (`child: own_group`, as Ray's workers are) that the whole session does.
"""

import os
import stat
import subprocess
import sys
import time

import yaml
from aiohttp import web

CONFIG = yaml.safe_load(os.environ["NEMO_GYM_CONFIG_DICT"])
NAME = os.environ["NEMO_GYM_CONFIG_PATH"]
((IMPL_CONFIG,),) = [list(v.values()) for v in CONFIG[NAME].values()]
MODE = IMPL_CONFIG.get("mode", "ok")

if IMPL_CONFIG.get("pid_file"):
    with open(IMPL_CONFIG["pid_file"], "a") as fh:
        fh.write(f"{os.getpid()}\n")
if IMPL_CONFIG.get("child"):
    own_group = IMPL_CONFIG["child"] == "own_group"
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(3600)"],
        preexec_fn=os.setpgrp if own_group else None,  # noqa: PLW1509 - a test's stray child
    )
    with open(IMPL_CONFIG["pid_file"], "a") as fh:
        fh.write(f"{child.pid}\n")
print(f"fake_weather {NAME} starting in mode {MODE}", flush=True)
if MODE == "crash":
    raise RuntimeError("boom: the fake server refuses to start")
if MODE == "missing_module":
    import gym_run_test_no_such_module  # noqa: F401 - ModuleNotFoundError, as a missing requirement
if MODE == "hang":
    time.sleep(3600)

calls = 0


def die(linger_s: float) -> None:
    """Exit with code 3. With `linger_s`, first refuse every connection (sockets closed) and stay
    alive that long, as a server shutting down does: unreachable before it has exited."""
    if linger_s:
        for fd in range(3, 1024):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.close(fd)
            except OSError:
                pass
        time.sleep(linger_s)
    os._exit(3)


async def liveness(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def seed_session(request: web.Request) -> web.Response:
    body = await request.json()
    response = web.json_response({})
    response.set_cookie("fake_session", f"s{body.get('initial', 0)}")
    return response


async def get_weather(request: web.Request) -> web.Response:
    global calls
    calls += 1
    if MODE == "die_after" and calls > int(IMPL_CONFIG.get("after", 1)):
        die(float(IMPL_CONFIG.get("linger_s", 0)))
    body = await request.json()
    session = request.cookies.get("fake_session", "none")
    return web.json_response({"city": body.get("city"), "weather_description": f"cold ({session})"})


async def verify(request: web.Request) -> web.Response:
    body = await request.json()
    session = request.cookies.get("fake_session", "none")
    seen = CONFIG.get("policy_model_name")  # a global value, as some NeMo Gym servers read one
    return web.json_response(
        {**body, "reward": 1.0, "session_at_verify": session, "global_seen": seen}
    )


app = web.Application()
app.router.add_get("/", liveness)
app.router.add_post("/seed_session", seed_session)
app.router.add_post("/get_weather", get_weather)
app.router.add_post("/verify", verify)
server = IMPL_CONFIG
web.run_app(app, host=server["host"], port=server["port"], print=None)
