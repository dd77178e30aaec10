"""Lint throughput: `gym-compile lint` over a directory of generated config files.

python benchmarks/bench_lint.py [--files 500]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import PY, emit, measured


def generate(work: Path, files: int) -> None:
    """Each file a resources server + an agent referring to it and to a shared model."""
    (work / "model.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    stand_in_model:\n      model: stand-in-1\n"
    )
    for i in range(files - 1):
        (work / f"weather_{i:04d}.yaml").write_text(
            f"weather_{i}:\n  resources_servers:\n    example_simple_weather:\n      domain: agent\n"
            f"      description: server {i}\n"
            f"agent_{i}:\n  responses_api_agents:\n    simple_agent:\n"
            f"      resources_server: {{type: resources_servers, name: weather_{i}}}\n"
            "      model_server: {type: responses_api_models, name: policy_model}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate(work, args.files)
        run = measured([PY, "-m", "gym_compile.cli", "lint", str(work)])
        if run.returncode != 0:
            raise SystemExit(run.output[-3000:])
    emit("lint.files", args.files)
    emit("lint.wall_s", run.wall_s)
    emit("lint.files_per_s", args.files / run.wall_s)
    emit("lint.peak_rss_mb", run.max_rss_mb)


if __name__ == "__main__":
    main()
