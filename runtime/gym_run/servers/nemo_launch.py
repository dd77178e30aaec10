"""Runs one NeMo Gym server (its `app.py`) as `ng_run` does, inside NeMo Gym's own Python.

Started by gym-run as `<nemo python> nemo_launch.py <dir>/<entrypoint>` in its own session (process
group), with NeMo Gym's environment (`NEMO_GYM_CONFIG_DICT`, `NEMO_GYM_CONFIG_PATH`). It adds two
things to what `python app.py` would do:

- **A watchdog.** `GYM_RUN_WATCHDOG_FD` is the read end of a pipe whose write end only gym-run
  holds. When gym-run goes away (a normal exit, a crash, or `kill -9`) the kernel closes that end,
  the read here returns EOF, and the whole process group (the server and anything it started) gets
  SIGTERM, then SIGKILL, as does whatever of its session left the group (Ray's workers do). Chosen
  over `prctl(PR_SET_PDEATHSIG)`: that fires when the *thread* that forked the child exits (not
  the process), reaches only the direct child (not uvicorn workers or other grandchildren), and is
  Linux-only; a pipe has none of these problems.
- **No Ray unless asked.** NeMo Gym 0.4 starts a Ray cluster in every server (`initialize_ray` in
  `run_webserver`), although simple environments never use it; that costs seconds and memory per
  server. With `GYM_RUN_LAZY_RAY=1` (and no `ray_head_node_address` in the config) the call is
  skipped; code that does use Ray still gets a local instance from Ray's own auto-init on first use.

Standard library only, and nothing of gym-run is imported: this file runs in another interpreter.
"""

import os
import runpy
import signal
import sys
import threading
import time

TERM_GRACE_S = 2.0


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _session_members():  # what left the group (Ray's workers) first
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        try:
            os.killpg(0, sig)
        except OSError:
            return
        time.sleep(TERM_GRACE_S)


def _session_members() -> list[int]:
    """The other live processes of this session (this launcher leads it), from /proc (Linux)."""
    me, sid = os.getpid(), str(os.getsid(0))
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().decode("ascii", "replace").rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 3 and fields[0] != "Z" and fields[3] == sid:
            found.append(int(entry))
    return found


def _skip_ray() -> None:
    if os.environ.pop("GYM_RUN_LAZY_RAY", "") != "1":
        return
    if "ray_head_node_address:" in os.environ.get("NEMO_GYM_CONFIG_DICT", ""):
        return  # the user runs a cluster and wants the servers on it
    try:
        import nemo_gym.server_utils as server_utils  # type: ignore[import-not-found]
    except Exception:  # an unusual NeMo Gym: leave it as it is
        return
    if hasattr(server_utils, "initialize_ray"):
        server_utils.initialize_ray = lambda *args, **kwargs: None


def main() -> None:
    entrypoint = os.path.abspath(sys.argv[1])
    # as `python app.py` would: the script's folder first on sys.path, not this file's folder
    sys.path[0] = os.path.dirname(entrypoint)
    fd = os.environ.pop("GYM_RUN_WATCHDOG_FD", "")
    if fd:
        threading.Thread(
            target=_watch, args=(int(fd),), name="gym-run-watchdog", daemon=True
        ).start()
    _skip_ray()
    sys.argv = [entrypoint, *sys.argv[2:]]
    runpy.run_path(entrypoint, run_name="__main__")


if __name__ == "__main__":
    main()
