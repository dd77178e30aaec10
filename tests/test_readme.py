"""README stays true: its OpenAI example runs as written, against a stand-in that plays OpenAI."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
from asyncio.subprocess import PIPE

import yaml
from gym_run.standin.server import start_standin

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _blocks(lang: str, after: str) -> list[str]:
    section = README[README.index(after) :]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def test_readme_starts_with_the_two_commands():
    first = _blocks("bash", "# gym-compile")[0].splitlines()
    assert first[0].startswith("make demo") and first[1].startswith("make test")
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()


async def test_openai_example_runs_as_written(tmp_path):
    env_yaml = yaml.safe_load(_blocks("yaml", "## Against OpenAI")[0])
    assert set(env_yaml) == {"policy_base_url", "policy_api_key", "policy_model_name"}
    key = "sk-readme-test-key-0123456789"
    standin = await start_standin(api_key=key, known_models=[env_yaml["policy_model_name"]])
    try:
        env_yaml.update(policy_base_url=standin.url, policy_api_key=key)
        (tmp_path / "env.yaml").write_text(yaml.safe_dump(env_yaml))
        (tmp_path / "examples").symlink_to(REPO / "examples")
        script = _blocks("bash", "## Against OpenAI")[0].replace("\\\n", " ")
        for line in filter(None, map(str.strip, script.splitlines())):
            argv = shlex.split(line)
            module = {"gym-compile": "gym_compile.cli", "gym-run": "gym_run.cli"}[argv[0]]
            # asyncio's subprocess: the stand-in is served by this test's own event loop meanwhile
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                *argv[1:],
                cwd=tmp_path,
                stdout=PIPE,
                stderr=PIPE,
                env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
            )
            out, err = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode == 0, err.decode()
            assert key not in (out + err).decode()
    finally:
        await standin.close()
    rollouts = [
        json.loads(line)
        for line in (tmp_path / "results/openai_rollouts.jsonl").read_text().splitlines()
    ]
    assert len(rollouts) == 5 and {r["reward"] for r in rollouts} == {1.0}
    assert {r["response"]["model"] for r in rollouts} == {env_yaml["policy_model_name"]}
    assert key not in (tmp_path / "plan.json").read_text()
