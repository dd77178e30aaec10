"""`gym-run serve --no-cache` means what `gym-run PLAN --no-cache` means: the plan's response cache
is neither read nor written (a real `gym-run serve` process, answered over HTTP)."""

from __future__ import annotations

import json
import signal
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from tests.runtime_helpers import seal, weather_plan, write_plan
from tests.test_serve_security import _gym_run, _serve_until_table


def _ask(url: str) -> dict:
    request = urllib.request.Request(
        url + "/responses",
        data=json.dumps({"input": "what's the weather in sf?"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.load(resp)


@pytest.mark.parametrize("no_cache", [False, True])
def test_serve_leaves_the_cache_alone_with_no_cache(tmp_path: Path, no_cache: bool) -> None:
    cache = tmp_path / "cache.sqlite"
    plan = weather_plan(tmp_path)
    plan["job"]["response_cache"] = {"path": str(cache), "stand_in": True}
    path = write_plan(tmp_path / "plan.json", seal(plan))
    flags = ["--no-cache"] if no_cache else []
    proc = _gym_run("serve", str(path), "--head-port", "0", *flags)
    try:
        lines = _serve_until_table(proc)
        url = next(line.split()[-1] for line in lines if line.startswith("policy_model"))
        assert _ask(url)["output"] and _ask(url)["output"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    if no_cache:
        assert not cache.exists()
    else:
        with sqlite3.connect(cache) as db:
            tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
            assert sum(db.execute(f"select count(*) from {t}").fetchone()[0] for t in tables) >= 1


def test_serve_help_names_no_cache() -> None:
    proc = _gym_run("serve", "--help")
    out, _err = proc.communicate(timeout=60)
    assert "--no-cache" in out and "response cache" in out
