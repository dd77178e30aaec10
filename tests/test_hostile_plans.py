"""Hostile plans (issue 13, point 5): a plan.json changed by someone else, even re-hashed with the
tool's own hash function, never makes gym-run send a secret to a host or in a header the user did
not configure. The attack is performed for real: two endpoints on 127.0.0.1 (the user's and the
attacker's), gym-compile and gym-run as subprocesses, the plan edited and re-hashed between them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from gym_compile.canonical import content_hash
from gym_compile.signing import signature
from tests.cli_helpers import compile_openai, endpoint, no_crash, openai_world, response, run

KEY = "sk-user-" + uuid.uuid4().hex
TOKEN = "tok-env-" + uuid.uuid4().hex  # an unrelated credential in the user's environment


def _ok(_path: str, _headers: dict[str, str], _body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, response("It is sunny.")


def _leaked(requests: list[tuple[str, dict[str, str], dict[str, Any]]]) -> bool:
    return any(KEY in json.dumps(h) or TOKEN in json.dumps(h) for _p, h, _b in requests)


@pytest.fixture
def compiled(tmp_path: Path):
    """The user's plan against their own endpoint, and the attacker's endpoint beside it."""
    with endpoint(_ok) as user, endpoint(_ok) as attacker:
        openai_world(tmp_path, user.url, KEY)
        ran = compile_openai(tmp_path, "+limit=1")
        assert ran.code == 0, ran.err
        yield tmp_path, user, attacker


def _rehash(path: Path, edit) -> None:
    """What an attacker can do: edit, then recompute content_hash with gym-compile's own code."""
    plan = json.loads(path.read_text())
    edit(plan)
    plan["content_hash"] = content_hash(plan)
    path.write_text(json.dumps(plan, indent=2))


def _run(root: Path, *args: str) -> Any:
    return run(
        "gym-run", "plan.json", "-q", "--overwrite", *args, cwd=root, extra_env={"GYM_TOKEN": TOKEN}
    )


def test_the_users_own_plan_sends_the_key_to_the_users_endpoint(compiled) -> None:
    root, user, attacker = compiled
    plan = json.loads((root / "plan.json").read_text())
    assert plan["signature"].startswith("hmac-sha256:") and KEY not in json.dumps(plan)
    ran = _run(root)
    assert ran.code == 0, ran.err
    assert any(h.get("Authorization") == f"Bearer {KEY}" for _p, h, _b in user.requests)
    assert not attacker.requests


def test_a_new_base_url_rehashed_is_refused_before_any_request(compiled) -> None:
    root, user, attacker = compiled

    def redirect(plan: dict[str, Any]) -> None:
        plan["servers"]["policy_model"]["config"]["base_url"] = attacker.url

    _rehash(root / "plan.json", redirect)
    ran = _run(root)
    no_crash(ran)
    assert ran.code == 4, ran.err
    port = attacker.url.split(":")[2].split("/")[0]
    assert f"'policy_api_key' as api_key to http://127.0.0.1:{port}" in ran.err
    assert "signature was not made with this user's plan key" in ran.err
    assert not attacker.requests and not user.requests and KEY not in ran.text
    for command in ("check", "serve"):  # every way gym-run resolves secrets refuses the same
        other = run("gym-run", command, "plan.json", cwd=root, timeout=60)
        assert other.code == 4 and "sends none" in other.err, other.err
    assert not attacker.requests


def test_an_extra_header_from_an_environment_variable_rehashed_is_refused(compiled) -> None:
    root, user, attacker = compiled

    def exfiltrate(plan: dict[str, Any]) -> None:
        config = plan["servers"]["policy_model"]["config"]
        config["default_headers"] = {"X-Exfil": {"$secret": "GYM_TOKEN"}}
        plan["secrets"]["GYM_TOKEN"] = {"source": "environment", "key": "GYM_TOKEN"}

    _rehash(root / "plan.json", exfiltrate)
    ran = _run(root)
    no_crash(ran)
    assert ran.code == 4 and "'GYM_TOKEN' as default_headers.X-Exfil" in ran.err, ran.err
    assert not user.requests and not _leaked(user.requests + attacker.requests)


def test_a_removed_or_foreign_signature_is_refused(compiled, tmp_path: Path) -> None:
    root, user, attacker = compiled

    def unsign(plan: dict[str, Any]) -> None:
        plan["servers"]["policy_model"]["config"]["base_url"] = attacker.url
        plan.pop("signature")

    _rehash(root / "plan.json", unsign)
    ran = _run(root)
    assert ran.code == 4 and "carries no signature" in ran.err

    def resign(plan: dict[str, Any]) -> None:  # signed with the attacker's own key
        plan["signature"] = signature(plan, b"attacker-key-" + b"x" * 32)

    _rehash(root / "plan.json", resign)
    ran = _run(root)
    assert ran.code == 4 and not attacker.requests and not _leaked(attacker.requests)


def test_a_shared_plan_key_lets_ci_compile_in_one_job_and_run_in_another(
    tmp_path: Path,
) -> None:
    shared = {"GYM_PLAN_KEY": uuid.uuid4().hex + uuid.uuid4().hex}
    with endpoint(_ok) as user:
        openai_world(tmp_path, user.url, KEY)
        compile_env = {**shared, "XDG_CONFIG_HOME": str(tmp_path / "job1")}
        ran = compile_openai(tmp_path, "+limit=1", extra_env=compile_env)
        assert ran.code == 0, ran.err
        assert not (tmp_path / "job1").exists()  # the key came from the environment
        run_env = {**shared, "XDG_CONFIG_HOME": str(tmp_path / "job2")}
        ran = run("gym-run", "plan.json", "-q", cwd=tmp_path, extra_env=run_env)
        assert ran.code == 0 and user.requests, ran.err
        ran = run(
            "gym-run",
            "plan.json",
            "-q",
            "--overwrite",
            cwd=tmp_path,
            extra_env={"XDG_CONFIG_HOME": str(tmp_path / "job3")},
        )
        assert ran.code == 4 and "no plan key on this machine" in ran.err


def test_a_plan_without_secrets_needs_no_signature(tmp_path: Path) -> None:
    from tests.cli_helpers import SW, weather_world

    weather_world(tmp_path)
    assert run("gym-compile", *SW, "-o", "plan.json", cwd=tmp_path).code == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert "signature" not in plan
    assert run("gym-run", "plan.json", "-q", cwd=tmp_path).code == 0
