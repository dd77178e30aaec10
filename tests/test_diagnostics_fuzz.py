"""Whatever a user writes, gym-compile answers with catalogued, located diagnostics, never a traceback."""

from __future__ import annotations

import os
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_compile.compiler import compile_config
from gym_compile.diagnostics import CMDLINE, Diagnostic
from gym_compile.diagnostics.ci import to_github, to_json
from gym_compile.diagnostics.codes import CATALOGUE
from gym_compile.diagnostics.sarif import to_sarif
from gym_compile.diagnostics.text import render_text
from gym_compile.lint import lint
from gym_compile.options import Options

PIECES = [
    "policy_model:",
    "  responses_api_models:",
    "    openai_model:",
    "    stand_in_model:",
    "      model: ${x}",
    "      port: 80",
    "      api_key: sk-aaaaaaaaaaaaaaaaaaaaaaaa",
    "x: ${y}",
    "y: ${x}",
    "agent_name: a",
    "a:",
    "  responses_api_agents:",
    "    simple_agent:",
    "      model_server: {type: responses_api_models, name: policy_model}",
    "config_paths: [b.yaml]",
    "\t- tab",
    "k: [1, ",
    "k: '",
    "k: ???",
    "k: !!python/object x",
    "<<: *nope",
    "- 1",
    "k: ${oc.env:",
    "",
]
TEXT = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(string.printable, max_size=20)), max_size=12
)
OVERRIDE = st.one_of(
    st.sampled_from(
        [
            "+x=1",
            "~x",
            "+a.b=[1,",
            "+=",
            "++k={a: 1}",
            "+config_paths=[b.yaml]",
            "+policy_model.responses_api_models.stand_in_model.port=x",
        ]
    ),
    st.text(string.printable, max_size=15).map(lambda t: "+" + t),
)


def _check(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        assert d.code in CATALOGUE, d
        assert d.location is None or d.location.file == CMDLINE or d.location.line >= 0
    render_text(diagnostics)
    to_json(diagnostics)
    to_github(diagnostics)
    to_sarif(diagnostics)


@settings(
    max_examples=int(os.environ.get("GYM_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(a=TEXT, b=TEXT, overrides=st.lists(OVERRIDE, max_size=3))
def test_compile_and_lint_never_raise(
    tmp_path: Path, a: list[str], b: list[str], overrides: list[str]
) -> None:
    (tmp_path / "a.yaml").write_text("\n".join(a), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("\n".join(b), encoding="utf-8")
    files = [tmp_path / "a.yaml", tmp_path / "b.yaml"]
    result = compile_config(files, overrides, Options(env=tmp_path / "none.yaml"))
    _check(result.diagnostics)
    _check(lint([str(f) for f in files]).diagnostics)
    _check(lint([str(f) for f in files], as_set=True, overrides=overrides).diagnostics)
