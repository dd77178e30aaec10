"""NeMo Gym 0.7's sandbox providers under gym-run: a server names a top-level block with
`sandbox_provider: sandbox` and NeMo Gym's own code resolves it from the global config (67 configs
of 0.7 do, its SWE environments among them). The block comes from NeMo Gym's own provider config
(`nemo_gym/sandbox/providers/local/configs/local.yaml`); the server is a small resources server
written here against nemo-gym 0.7 (tests/nemo_venv.py) that resolves it with NeMo Gym's
`resolve_provider_config` and answers what it found.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from gym_run.collect.runner import run_job

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.runtime_helpers import read_jsonl
from tests.test_nemo07_run import STAND_IN, nemo07  # noqa: F401 - the fixture

LOCAL = "nemo_gym/sandbox/providers/local/configs/local.yaml"
PROBE = textwrap.dedent(
    """
    from nemo_gym.base_resources_server import (
        BaseResourcesServerConfig, BaseVerifyRequest, BaseVerifyResponse, SimpleResourcesServer,
    )
    from nemo_gym.global_config import get_global_config_dict
    from nemo_gym.sandbox.config import resolve_provider_config


    class ProbeConfig(BaseResourcesServerConfig):
        sandbox_provider: str


    class ProbeVerifyResponse(BaseVerifyResponse):
        provider: dict


    class Probe(SimpleResourcesServer):
        config: ProbeConfig

        async def verify(self, body: BaseVerifyRequest) -> ProbeVerifyResponse:
            provider = resolve_provider_config(self.config.sandbox_provider, get_global_config_dict())
            return ProbeVerifyResponse(**body.model_dump(), reward=1.0, provider=provider)


    if __name__ == "__main__":
        Probe.run_webserver()
    """
)
CONFIG = """
sandbox_probe:
  resources_servers:
    sandbox_probe:
      entrypoint: app.py
      domain: other
      verified: false
      description: resolves its sandbox provider as NeMo Gym's SWE servers do
      sandbox_provider: sandbox
probe_agent:
  responses_api_agents:
    simple_agent:
      entrypoint: app.py
      resources_server: {type: resources_servers, name: sandbox_probe}
      model_server: {type: responses_api_models, name: policy_model}
"""


def _compile(nemo07, tmp_path: Path, provider: Path):  # noqa: F811 - the fixture's value
    python, root = nemo07
    tree = tmp_path / "tree"
    (tree / "resources_servers" / "sandbox_probe").mkdir(parents=True)
    (tree / "resources_servers" / "sandbox_probe" / "app.py").write_text(PROBE)
    (tmp_path / "probe.yaml").write_text(CONFIG)
    (tmp_path / "rows.jsonl").write_text('{"responses_create_params": {"input": "hi"}}\n')
    return compile_config(
        [tmp_path / "probe.yaml", STAND_IN, provider],
        [
            "+agent_name=probe_agent",
            f"+input_jsonl_fpath={tmp_path / 'rows.jsonl'}",
            f"+output_jsonl_fpath={tmp_path / 'out' / 'rollouts.jsonl'}",
            f"+nemo_gym={{python: {python}, processes: all}}",
        ],
        Options(default_env=False, nemo_gym_roots=(tree, root)),
    )


async def test_a_sandbox_provider_block_reaches_the_nemo_gym_server_naming_it(nemo07, tmp_path):  # noqa: F811
    """Before: the block was reported unused (GYM038) and left out of the plan, and NeMo Gym's
    server said "Sandbox provider reference 'sandbox' is not defined in the merged config"."""
    result = _compile(nemo07, tmp_path, nemo07[1] / LOCAL)
    assert result.ok, [d.message for d in result.diagnostics]
    assert not [d for d in result.diagnostics if d.code == "GYM038"]
    run = await run_job(result.plan, show_progress=False)
    assert run.counts["ok"] == 1, run.first_error
    (record,) = read_jsonl(run.rollouts_path)
    assert record["provider"]["local"]["shell"] == "/bin/bash"  # NeMo Gym's local.yaml


def test_a_sandbox_provider_block_with_a_secret_is_left_out_and_said_so(nemo07, tmp_path):  # noqa: F811
    provider = tmp_path / "remote.yaml"
    provider.write_text("sandbox:\n  daytona:\n    connection: {api_key: dk-not-a-real-key-123}\n")
    result = _compile(nemo07, tmp_path, provider)
    (warning,) = [d for d in result.diagnostics if d.code == "GYM083"]
    assert "connection.api_key" in warning.message
    assert "sandbox" not in result.plan["nemo_gym"]["globals"]
    assert "dk-not-a-real-key-123" not in str(result.plan)
