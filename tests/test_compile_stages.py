"""Unit tests of the compiler stages on small generated configs (the CLI catalogue lives in tests/cases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gym_compile.canonical import content_hash
from gym_compile.compiler import compile_config
from gym_compile.diagnostics import CompileError
from gym_compile.interpolate import Call, Ref, parse, resolve
from gym_compile.merge import merge
from gym_compile.options import Options
from gym_compile.overrides import parse_override
from gym_compile.plan import write_plan
from gym_compile.schema_catalog import validator
from tests.conftest import EXAMPLES

WEATHER = EXAMPLES / "simple_weather"


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def resolved(tmp: Path, text: str, env: str | None = None, overrides: tuple[str, ...] = ()) -> dict:
    cfg = write(tmp, "c.yaml", text)
    env_path = write(tmp, "env.yaml", env) if env is not None else tmp / "env.yaml"
    r = resolve(merge([cfg], env_path, [parse_override(o) for o in overrides]))
    assert not r.diagnostics, r.diagnostics
    return r.data


# -- overrides -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "op", "path", "value"),
    [
        ("+config_paths=[a.yaml,b.yaml]", "set", ("config_paths",), ["a.yaml", "b.yaml"]),
        (
            "+responses_create_params.temperature=0.2",
            "set",
            ("responses_create_params", "temperature"),
            0.2,
        ),
        ("limit=10", "set", ("limit",), 10),
        ("++x.y=true", "set", ("x", "y"), True),
        ("+m={a: 1, b: [x]}", "set", ("m",), {"a": 1, "b": ["x"]}),
        ("+s='quoted: yes'", "set", ("s",), "quoted: yes"),
        ("+e=", "set", ("e",), ""),
        ("+n=null", "set", ("n",), None),
        ("~a.b", "delete", ("a", "b"), None),
    ],
)
def test_override_grammar(text, op, path, value):
    o = parse_override(text)
    assert (o.op, o.path, o.value) == (op, path, value)


@pytest.mark.parametrize("text", ["+=1", "+a..b=1", "+a", "a=[1,"])
def test_malformed_override_is_located_at_the_command_line(text):
    with pytest.raises(CompileError) as info:
        parse_override(text)
    (d,) = info.value.diagnostics
    assert d.code == "GYM010" and str(d.location) == f"<command line>:{text}"


# -- interpolation --------------------------------------------------------------------------------
def test_parse_tree():
    assert parse("a ${b.c} \\${d} ${oc.select:x,${y}}") == [
        "a ",
        Ref("b.c"),
        " ${d} ",
        Call("oc.select", (("x",), (Ref("y"),))),
    ]


def test_interpolation_types_escapes_and_resolvers(tmp_path, monkeypatch):
    monkeypatch.setenv("GYM_TEST_VAR", "from-env")
    data = resolved(
        tmp_path,
        """
n: 3
as_int: ${n}
as_text: "n=${n}"
escaped: "\\\\${n}"
env: ${oc.env:GYM_TEST_VAR}
env_default: ${oc.env:GYM_TEST_UNSET,fallback}
select: ${oc.select:missing.key,${n}}
node:
  a: 1
  b: ${.a}
  c: ${node.a}
chain: ${as_int}
""",
        env="extra: x\n",
    )
    assert data["as_int"] == 3 and data["as_text"] == "n=3" and data["escaped"] == "${n}"
    assert data["env"] == "from-env" and data["env_default"] == "fallback"
    assert data["select"] == 3 and data["node"] == {"a": 1, "b": 1, "c": 1} and data["chain"] == 3


def test_all_interpolation_errors_in_one_pass(tmp_path):
    cfg = write(tmp_path, "c.yaml", "a: ${b}\nb: ${a}\nc: ${nope}\nd: ???\ne: ${oc.bad:1}\n")
    r = resolve(merge([cfg], tmp_path / "env.yaml", []))
    codes = sorted(d.code for d in r.diagnostics)
    assert codes == ["GYM020", "GYM021", "GYM022", "GYM023"]
    undefined = next(d for d in r.diagnostics if d.code == "GYM020")
    assert str(undefined.location) == f"{cfg}:3:4"
    assert any("env.yaml was looked for at" in h for h in undefined.hints)


# -- merge ------------------------------------------------------------------------------------------
def test_precedence_files_then_env_then_overrides(tmp_path):
    write(tmp_path, "inc/base.yaml", "x: base\nlst: [1, 2]\nm: {a: 1, b: 1}\n")
    a = write(tmp_path, "a.yaml", "config_paths: [inc/base.yaml]\nx: a\nm: {b: 2}\n")
    b = write(tmp_path, "b.yaml", "lst: [3]\ny: b\n")
    env = write(tmp_path, "env.yaml", "y: env\nz: env\n")
    m = merge([a, b], env, [parse_override("+z=cli")])
    assert m.data == {"x": "a", "lst": [3], "m": {"a": 1, "b": 2}, "y": "env", "z": "cli"}
    assert [d.path.name for d in m.configs] == ["base.yaml", "a.yaml", "b.yaml"]
    assert m.source.at(("m", "a")).file.endswith("base.yaml")
    assert str(m.source.at(("z",))) == "<command line>:+z=cli"


def test_include_cycle_and_missing_include_reported_together(tmp_path):
    a = write(tmp_path, "a.yaml", "config_paths: [b.yaml, missing.yaml]\n")
    write(tmp_path, "b.yaml", "config_paths: [a.yaml]\n")
    with pytest.raises(CompileError) as info:
        merge([a], None, [])
    codes = sorted(d.code for d in info.value.diagnostics)
    assert codes == ["GYM003", "GYM004"]


# -- whole compile -> plan -------------------------------------------------------------------------
def test_openai_example_plan_holds_references_not_secrets(tmp_path):
    env = write(
        tmp_path,
        "env.yaml",
        "policy_base_url: http://127.0.0.1:9/v1\n"
        "policy_api_key: sk-test-DO-NOT-LEAK-123456\npolicy_model_name: gpt-4.1\n",
    )
    result = compile_config(
        [WEATHER / "simple_weather.yaml", WEATHER / "openai_model.yaml"],
        ["+limit=2", "+responses_create_params.temperature=0.2"],
        Options(env=env),
    )
    assert result.ok, result.diagnostics
    plan = result.plan
    text = json.dumps(plan)
    assert "DO-NOT-LEAK" not in text
    model = plan["servers"]["policy_model"]["config"]
    assert model["api_key"] == {"$secret": "policy_api_key"}
    assert plan["secrets"] == {"policy_api_key": {"source": "env_file", "key": "policy_api_key"}}
    assert model["base_url"] == "http://127.0.0.1:9/v1" and model["timeouts"]["read"] == 600
    assert plan["job"]["limit"] == 2 and plan["job"]["input"]["rows"] == 5
    assert plan["job"]["responses_create_params"] == {"temperature": 0.2}
    assert plan["content_hash"] == content_hash(plan)
    validator("plan.schema.json").validate(plan)
    roles = sorted(s["role"] for s in plan["sources"])
    assert roles == ["config", "config", "env", "input"]


def test_nemo_gym_spelling_is_normalised_and_conflicts_reported(tmp_path):
    env = write(tmp_path, "env.yaml", "k: secret-value-1234\n")
    cfg = write(
        tmp_path,
        "m.yaml",
        "m:\n  responses_api_models:\n    openai_model:\n"
        "      openai_base_url: http://x/v1\n      openai_api_key: ${k}\n      openai_model: gpt\n",
    )
    plan = compile_config([cfg], [], Options(env=env)).plan
    assert plan["servers"]["m"]["config"]["model"] == "gpt"
    assert plan["servers"]["m"]["config"]["api_key"] == {"$secret": "k"}
    both = write(tmp_path, "both.yaml", cfg.read_text() + "      model: other\n")
    result = compile_config([both], [], Options(env=env))
    assert not result.ok and [d.code for d in result.diagnostics] == ["GYM034"]


def test_plan_is_deterministic_and_written_atomically(tmp_path):
    args = ([WEATHER / "simple_weather.yaml", WEATHER / "stand_in_model.yaml"], ["+limit=1"])
    first, second = compile_config(*args).plan, compile_config(*args).plan
    assert first == second
    out = tmp_path / "sub" / "plan.json"
    write_plan(first, out)
    assert json.loads(out.read_text()) == first
    assert [p.name for p in out.parent.iterdir()] == ["plan.json"]


def test_secrets_are_kept_out_of_the_plan_wherever_they_flow(tmp_path):
    env = write(
        tmp_path,
        "env.yaml",
        "policy_api_key: CANARY-key-0001\nhf_token: CANARY-hf-0002\nplain: ok\n",
    )
    model = (
        "m:\n  responses_api_models:\n    openai_model:\n      base_url: http://127.0.0.1:9/v1\n"
        "      api_key: ${policy_api_key}\n      model: gpt\n      default_headers:\n"
    )
    cfg = write(
        tmp_path,
        "m.yaml",
        model + "        X-HF: ${hf_token}\n        X-Plain: ${plain}\n"
        "        X-Lit: sk-proj-abcdefghijklmnopqrstuv123456\n",
    )
    result = compile_config([cfg], [], Options(env=env))
    assert result.ok and [d.code for d in result.diagnostics] == ["GYM060"]
    text = json.dumps(result.plan)
    assert "CANARY" not in text and "abcdefghijklmnop" not in text
    headers = result.plan["servers"]["m"]["config"]["default_headers"]
    assert headers["X-HF"] == {"$secret": "hf_token"} and headers["X-Plain"] == "ok"
    assert result.plan["secrets"]["hf_token"] == {"source": "env_file", "key": "hf_token"}
    assert result.plan["secrets"][headers["X-Lit"]["$secret"]]["source"] == "config"

    embedded = write(tmp_path, "e.yaml", model + "        Authorization: Bearer ${hf_token}\n")
    result = compile_config([embedded], [], Options(env=env))
    assert not result.ok and [d.code for d in result.diagnostics] == ["GYM061"]
    assert result.diagnostics[0].location.line == 8


ROWS = [
    ({"responses_create_params": {"input": "hi"}}, True),
    (
        {
            "responses_create_params": {
                "input": [{"role": "user", "content": "hi"}],
                "tools": [
                    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
                ],
            }
        },
        True,
    ),
    ({"responses_create_params": {"input": [{"role": "wizard", "content": "hi"}]}}, False),
    ({"responses_create_params": {"tools": []}}, False),
    ({"responses_create_params": {"input": "x", "temperature": 3}}, False),
    (
        {
            "responses_create_params": {
                "input": "x",
                "tools": [{"type": "function", "name": "bad name!"}],
            }
        },
        False,
    ),
    ([1, 2], False),
]


@pytest.mark.parametrize("pure", ["0", "1"])
def test_quick_row_check_agrees_with_jsonschema(monkeypatch, pure):
    """The optional fastjsonschema path and the pure-Python path give the same verdicts."""
    from gym_compile import schema_catalog

    monkeypatch.setenv("GYM_PURE_PYTHON", pure)
    schema_catalog.quick_check.cache_clear()
    try:
        check = schema_catalog.quick_check("input_row.schema.json")
        assert [check(row) for row, _ in ROWS] == [ok for _, ok in ROWS]
    finally:
        schema_catalog.quick_check.cache_clear()


def test_a_secret_with_text_around_it_on_the_command_line_is_refused(tmp_path):
    env = write(tmp_path, "env.yaml", "policy_api_key: CANARY-key-0001\n")
    cfg = write(
        tmp_path,
        "m.yaml",
        "m:\n  responses_api_models:\n    openai_model:\n      model: gpt\n"
        "      api_key: ${policy_api_key}\n",
    )
    result = compile_config(
        [cfg], ["+m.responses_api_models.openai_model.api_key=${policy_api_key}x"], Options(env=env)
    )
    assert not result.ok and [d.code for d in result.diagnostics] == ["GYM061"]
    assert compile_config([cfg], [], Options(env=env)).ok
