"""Compile time and peak RSS for a generated config of 1,000 server instances and a 100,000-row dataset.

python benchmarks/bench_compile.py [--servers 1000] [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from common import PY, emit, measured, write_rows


def generate(work: Path, servers: int) -> Path:
    """One model, then resources servers and agents in pairs, each agent pointing at its own server."""
    lines = [
        "policy_model:",
        "  responses_api_models:",
        "    stand_in_model:",
        "      model: stand-in-1",
    ]
    pairs = (servers - 1) // 2
    for i in range(pairs):
        lines += [
            f"weather_{i}:",
            "  resources_servers:",
            "    example_simple_weather:",
            "      entrypoint: app.py",
            "      domain: agent",
            f"      description: weather server {i}",
            f"agent_{i}:",
            "  responses_api_agents:",
            "    simple_agent:",
            "      entrypoint: app.py",
            f"      resources_server: {{type: resources_servers, name: weather_{i}}}",
            "      model_server: {type: responses_api_models, name: policy_model}",
            "      datasets:",
            f"      - {{name: d{i}, type: example, jsonl_fpath: rows.jsonl}}",
        ]
    path = work / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = generate(work, args.servers)
        write_rows(work / "rows.jsonl", args.rows)
        cmd = [
            PY,
            "-m",
            "gym_compile.cli",
            str(config),
            "+agent_name=agent_0",
            f"+input_jsonl_fpath={work / 'rows.jsonl'}",
            "-o",
            str(work / "plan.json"),
        ]
        write_rows(work / "few.jsonl", 100)
        config_only = cmd[:5] + [f"+input_jsonl_fpath={work / 'few.jsonl'}"] + cmd[6:]
        runs = [measured(cmd) for _ in range(args.repeats)]
        small = [measured(config_only) for _ in range(args.repeats)]
        for r in runs + small:
            if r.returncode != 0:
                raise SystemExit(r.output[-3000:])
        emit("compile.config_only_wall_s_median", statistics.median(r.wall_s for r in small))
        emit("compile.servers", args.servers)
        emit("compile.rows", args.rows)
        emit("compile.wall_s_median", statistics.median(r.wall_s for r in runs))
        emit("compile.cpu_s_median", statistics.median(r.cpu_s for r in runs))
        emit("compile.peak_rss_mb", max(r.max_rss_mb for r in runs))


if __name__ == "__main__":
    main()
