"""Price table lookups, the cost formula, config overrides and the per-run cost meter."""

from __future__ import annotations

import json

import pytest
from gym_run.endpoint.pricing import (
    CostMeter,
    Price,
    PriceTable,
    cost_usd,
    merge_usage_by_server,
    normalise_usage,
    server_models,
)
from jsonschema import Draft202012Validator

from gym_compile.assets import schemas_dir

BRIEF_MODELS = [
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-3.5-turbo",
    "gpt-4-turbo",
    "gpt-4",
]


def usage(inp=0, cached=0, out=0, reasoning=0):
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_tokens": reasoning,
        "total_tokens": inp + out,
    }


def test_builtin_table_matches_its_schema_and_states_sources():
    doc = json.loads((schemas_dir() / "prices.json").read_text())
    schema = json.loads((schemas_dir() / "prices.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert not list(Draft202012Validator(schema).iter_errors(doc))
    for name in BRIEF_MODELS:
        entry = doc["models"][name]
        assert entry["source"] and entry["as_of"], name
    assert doc["models"]["stand-in-1"] is None


@pytest.mark.parametrize(
    "asked,family",
    [
        ("gpt-4.1", "gpt-4.1"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("GPT-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4-0125-preview", "gpt-4-turbo"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
        ("o3-2025-04-16", "o3"),
        (" gpt-4o ", "gpt-4o"),
    ],
)
def test_price_for_matches_families_and_snapshots(asked, family):
    table = PriceTable.load()
    price = table.price_for(asked)
    assert price is not None and price.model == family


def test_exact_snapshot_entry_wins_over_its_family():
    table = PriceTable.load()
    assert table.price_for("gpt-4o-2024-05-13").input == 5.0
    assert table.price_for("gpt-4o-2024-08-06").input == 2.5


def test_a_prefix_is_not_a_family():
    table = PriceTable.load()
    for name in ("gpt-4.1-mini-custom", "gpt-4o-audio", "my-gpt-4", "gpt-4.10", ""):
        assert table.price_for(name) is None, name
        assert not table.knows(name)


def test_stand_in_is_known_but_unpriced():
    table = PriceTable.load()
    assert table.knows("stand-in-1") and table.price_for("stand-in-1") is None


def test_cost_formula_splits_cached_input_and_counts_reasoning_once():
    price = Price("m", input=2.0, output=8.0, cached_input=0.5)
    # 1000 input of which 400 cached, 300 output of which 100 reasoning
    got = cost_usd(usage(1000, 400, 300, 100), price)
    assert got == pytest.approx((600 * 2.0 + 400 * 0.5 + 300 * 8.0) / 1e6)


def test_no_cached_discount_prices_cached_as_input_and_clamps_bad_counts():
    price = Price("m", input=10.0, output=30.0, cached_input=None)
    assert cost_usd(usage(1000, 400, 0), price) == pytest.approx(1000 * 10.0 / 1e6)
    weird = Price("m", input=1.0, output=0.0, cached_input=0.0)
    assert cost_usd(usage(10, 50, 0), weird) == 0.0  # more cached than input: never negative


def test_raw_responses_usage_shape_is_accepted():
    raw = {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 20},
        "output_tokens": 10,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 110,
    }
    assert normalise_usage(raw) == usage(100, 20, 10, 4) | {"total_tokens": 110}
    assert (
        normalise_usage({"input_tokens": True, "output_tokens": -3, "total_tokens": "9"}) == usage()
    )


def test_overrides_extend_replace_and_unprice():
    table = PriceTable.load(
        {
            "models": {
                "my-vllm": {"input": 0.0, "output": 0.0},
                "gpt-4.1": {
                    "input": 1.0,
                    "cached_input": 0.25,
                    "output": 4.0,
                    "source": "contract",
                },
                "gpt-4o": None,
            },
            "aliases": {"policy": "gpt-4.1"},
        }
    )
    assert table.price_for("my-vllm") == Price("my-vllm", 0.0, 0.0, None, table.as_of, table.source)
    assert table.price_for("gpt-4.1-2025-04-14").input == 1.0
    assert table.price_for("gpt-4.1-2025-04-14").source == "contract"
    assert table.price_for("policy").output == 4.0
    assert table.price_for("gpt-4o") is None and table.knows("gpt-4o")
    assert table.price_for("gpt-4.1-mini").input == 0.4  # the rest of the table is still there


def test_cost_meter_totals_and_one_warning_per_unpriced_model():
    table = PriceTable.load()
    meter = CostMeter(
        table,
        {
            "policy_model": "gpt-4.1-2025-04-14",
            "judge_model": "stand-in-1",
            "other": "mystery-model",
        },
    )
    priced = meter.rollout({"policy_model": usage(1_000_000, 0, 1_000_000)})
    assert priced.total_usd == pytest.approx(10.0) and priced.by_server == {
        "policy_model": pytest.approx(10.0)
    }
    for _ in range(3):
        mixed = meter.rollout(
            {"policy_model": usage(1_000_000), "judge_model": usage(5, 0, 5), "other": usage(1)}
        )
    assert mixed.total_usd is None  # not 0: part of it cannot be priced
    assert mixed.by_server["judge_model"] is None and mixed.by_server[
        "policy_model"
    ] == pytest.approx(2.0)
    assert meter.warnings == [
        "cost: n/a (stand-in-1 has no price)",
        "cost: n/a for server 'other': no price for model 'mystery-model' "
        "(add it under prices.models in the config, USD per 1M tokens)",
    ]
    assert meter.total_usd == pytest.approx(10.0 + 3 * 2.0)
    assert meter.unpriced_rollouts == 3
    assert meter.rollout({}).total_usd == 0.0


def test_usage_by_server_merges_policy_and_judge_on_one_server():
    merged = merge_usage_by_server(
        {"m": usage(10, 2, 3)}, {"m": usage(1, 0, 1), "j": usage(5)}, None
    )
    assert merged["m"] == usage(11, 2, 4) and merged["j"] == usage(5)


def test_server_models_reads_model_servers_of_a_plan():
    servers = {
        "policy_model": {"type": "responses_api_models", "config": {"model": "gpt-4.1"}},
        "judge": {"type": "responses_api_models", "config": {"model": "stand-in-1"}},
        "weather": {"type": "resources_servers", "config": {"domain": "agent"}},
    }
    assert server_models(servers) == {"policy_model": "gpt-4.1", "judge": "stand-in-1"}


def test_bad_overrides_are_refused_with_every_problem_named():
    with pytest.raises(ValueError) as info:
        PriceTable.load({"models": {"m": {"input": -1}}, "aliasses": {}})
    message = str(info.value)
    assert "models.m: 'output' is a required property" in message
    assert "models.m.input: -1 is less than the minimum of 0" in message
    assert "aliasses" in message
