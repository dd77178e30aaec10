"""Hypothesis strategies for what users type: overrides on known keys, values in a config file,
rows of a dataset; and `internal_error`, the one check shared by the test (a few hundred examples)
and benchmarks/bench_fuzz.py (10,000, counting instead of stopping).

A known key with a wrong value is where internal errors hid (`+num_repeats=two`, `+limit=1e3`,
`limit: '5'`, `+budget.max_usd=abc`, `+output_jsonl_fpath=null`): random keys rarely reach the
stages after validation, so the keys here are the ones those stages read.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROW = {
    "responses_create_params": {
        "input": [{"role": "user", "content": "what's it like in sf?"}],
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    }
}
MODEL = ("policy_model", "responses_api_models", "stand_in_model")
AGENT = ("simple_weather_simple_agent", "responses_api_agents", "simple_agent")
TOOLS = ("example_simple_weather", "resources_servers", "example_simple_weather")
BASE: dict[str, Any] = {
    "policy_model": {"responses_api_models": {"stand_in_model": {"model": "stand-in-1"}}},
    "example_simple_weather": {
        "resources_servers": {"example_simple_weather": {"domain": "agent", "verified": False}}
    },
    "simple_weather_simple_agent": {
        "responses_api_agents": {
            "simple_agent": {
                "resources_server": {"type": "resources_servers", "name": "example_simple_weather"},
                "model_server": {"type": "responses_api_models", "name": "policy_model"},
                "datasets": [{"name": "example", "type": "example", "jsonl_fpath": "rows.jsonl"}],
            }
        }
    },
    "prices": {"models": {"stand-in-1": {"input": 1.0, "output": 2.0}}},
    "budget": {"max_usd": 100.0},
    "limit": 2,
}
GLOBAL_KEYS = [
    "agent_name",
    "input_jsonl_fpath",
    "output_jsonl_fpath",
    "limit",
    "num_repeats",
    "num_samples_in_parallel",
    "responses_create_params",
    "responses_create_params.temperature",
    "responses_create_params.max_output_tokens",
    "responses_create_params.input",
    "budget",
    "budget.max_usd",
    "budget.max_tokens",
    "prices",
    "prices.models.stand-in-1",
    "prices.models.stand-in-1.input",
    "response_cache",
    "response_cache.path",
    "response_cache.stand_in",
    "config_paths",
]
SERVER_KEYS = (
    [
        ".".join(MODEL + (k,))
        for k in (
            "model",
            "latency_ms",
            "port",
            "host",
            "faults",
            "faults.rate_limit",
            "faults.seed",
        )
    ]
    + [
        ".".join(AGENT + (k,))
        for k in (
            "max_steps",
            "rollout_timeout_s",
            "datasets",
            "datasets.0",
            "datasets.0.jsonl_fpath",
            "model_server",
            "model_server.name",
            "resources_server.type",
        )
    ]
    + [".".join(TOOLS + (k,)) for k in ("domain", "verified", "port")]
)
TRICKY = [
    "two", "1e3", "1e9", "'5'", '"5"', "null", "~", "-1", "0", "true", "[]", "{}", "[1,2]", "{a: 1}",
    "9" * 5000, "[" * 300, "{" * 100_000, "${x}", "${oc.env:GYM_FUZZ_NOPE}", "${" * 50,
    "/dev/zero", "/proc/self/environ", ".", "", "nan", ".inf", "-.inf", "2020-01-01", "!!int abc",
    "!!python/object:os.system", "x" * 10_000, "&a [*a]", "\\${x}", "1_000", "0x1f", "+1", "1.",
    "a: b: c", "- x", "'", '"', "{a: [", "rows.jsonl", "[rows.jsonl]", "{path: x.sqlite}",
]  # fmt: skip


def _yaml_scalar(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1 << 30)
        .strip()
        .removesuffix("...")
        .strip()
    )


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        st.sampled_from(["${x}", "${limit}", "${oc.env:HOME}", "???", "rows.jsonl", "/dev/null"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
value_texts = st.one_of(
    st.sampled_from(TRICKY),
    json_values.map(_yaml_scalar),
    st.text(max_size=40),
)
overrides = st.lists(
    st.tuples(
        st.sampled_from(["+", "", "++", "~"]),
        st.one_of(st.sampled_from(GLOBAL_KEYS + SERVER_KEYS), st.text(max_size=12)),
        value_texts,
    ).map(lambda t: f"{t[0]}{t[1]}" if t[0] == "~" else f"{t[0]}{t[1]}={t[2]}"),
    min_size=1,
    max_size=4,
)
config_edits = st.lists(
    st.tuples(st.sampled_from(GLOBAL_KEYS + SERVER_KEYS), json_values), min_size=1, max_size=4
)
rows = st.lists(
    st.one_of(
        st.just(json.dumps(ROW)),
        json_values.map(json.dumps),
        st.fixed_dictionaries({"responses_create_params": json_values}).map(json.dumps),
        st.sampled_from(
            [
                "[" * 100_000 + "]" * 100_000,
                '{"responses_create_params": {"input": "hi"}, "n": ' + "9" * 5000 + "}",
                '{"responses_create_params": {"input": ' + "[" * 150 + "]" * 150 + "}}",
                "root:*:20228:0:99999:7:::",
                "\x00\x01",
                "",
            ]
        ),
        st.text(max_size=60),
    ),
    min_size=1,
    max_size=6,
)


def write_world(root: Path, rows_text: list[str] | None = None) -> Path:
    """The base config and a rows file under `root`; returns the config path."""
    (root / "rows.jsonl").write_text(
        "\n".join(rows_text if rows_text is not None else [json.dumps(ROW)] * 3) + "\n",
        encoding="utf-8",
        errors="surrogatepass",
    )
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(BASE, sort_keys=False), encoding="utf-8")
    return config


def edited(edits: list[tuple[str, Any]]) -> dict[str, Any]:
    """BASE with each dotted key set to a value (lists indexed by number, missing maps made)."""
    doc: dict[str, Any] = json.loads(json.dumps(BASE))
    for key, value in edits:
        node: Any = doc
        parts = key.split(".")
        for part in parts[:-1]:
            if isinstance(node, dict):
                nxt = node.setdefault(part, {})
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                nxt = node[int(part)]
            else:
                nxt = None
            if not isinstance(nxt, (dict, list)):
                break
            node = nxt
        else:
            last = parts[-1]
            if isinstance(node, dict):
                node[last] = value
            elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
                node[int(last)] = value
    return doc


def internal_error(root: Path, config: Path, args: list[str]) -> str | None:
    """None when gym-compile answers with catalogued diagnostics (or a plan) and every renderer
    copes; else the internal error, one line (type, message, where)."""
    from gym_compile.compiler import compile_config

    try:
        from gym_compile.diagnostics.codes import CATALOGUE
        from gym_compile.diagnostics.text import render_text
    except ImportError:  # the layout before issue 10 (benchmarks measure older checkouts too)
        from gym_compile.codes import CATALOGUE  # type: ignore[no-redef]
        from gym_compile.render import render_text  # type: ignore[no-redef]

    cwd = os.getcwd()
    os.chdir(root)
    try:
        try:
            from gym_compile.options import Options
        except ImportError:  # before compile options were one object
            result = compile_config([config], args, env=root / "none.yaml")  # type: ignore[call-arg]
        else:
            result = compile_config([config], args, Options(env=root / "none.yaml"))
        unknown = [d.code for d in result.diagnostics if d.code not in CATALOGUE]
        if unknown:
            return f"uncatalogued codes {unknown}"
        render_text(result.diagnostics)
        if result.plan is not None:
            from gym_compile.plan import write_plan

            write_plan(result.plan, root / "plan.json")
        return None
    except Exception as exc:  # what we are looking for
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return (
            f"{type(exc).__name__}: {str(exc)[:120]} ({Path(frame.filename).name}:{frame.lineno})"
        )
    finally:
        os.chdir(cwd)


def runtime_rows_error(root: Path) -> str | None:
    """None when gym-run's row reader gives rows or a PlanError for the rows file."""
    try:
        from gym_run.collect.rollouts import iter_rows
        from gym_run.errors import GymRunError
    except ImportError:  # an older layout (benchmarks run against a checkout from before)
        from runtime.collect import iter_rows  # type: ignore[no-redef]
        from runtime.errors import GymRunError  # type: ignore[no-redef]
    try:
        for _ in iter_rows(str(root / "rows.jsonl")):
            pass
    except GymRunError:
        return None
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return (
            f"{type(exc).__name__}: {str(exc)[:120]} ({Path(frame.filename).name}:{frame.lineno})"
        )
    return None
