"""Aggregate metrics, report data and compare over 1,000 vs 100,000 rollouts: peak RSS must stay
flat (only per-task state may grow) and the pass must be quick.

python benchmarks/bench_aggregate.py [--small 1000] [--large 100000] [--repeats 4]

Each figure comes from a fresh child process reading a generated rollouts file whose records look
like the stand-in's (a response, usage, latency, a random reward; latencies and token counts all
distinct, so the medians go through the bounded sketch).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from common import PY, emit, measured

RECORD = {
    "responses_create_params": {
        "input": [
            {"role": "developer", "content": "You are a helpful personal assistant."},
            {"role": "user", "content": "what's it like in sf?"},
        ]
    },
    "response": {
        "id": "resp_x",
        "object": "response",
        "model": "stand-in-1",
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "The weather in sf is cold."}],
            }
        ],
        "usage": {"input_tokens": 120, "output_tokens": 12, "total_tokens": 132},
    },
}

CHILD = """
import sys, time
from gym_run.collect.resume import FinalSet
from gym_run.metrics.finalset import Outputs, summarize_final_set
from gym_run.report.compare import compare_files
what, path, repeats, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
started = time.perf_counter()
if what == "aggregate":
    doc = summarize_final_set(FinalSet(path), num_repeats=repeats, outputs=Outputs(tasks_path=tasks))
    assert doc["rollouts"]["final"] > 0
else:
    c = compare_files(path, path)
    assert c.tasks > 0
print(time.perf_counter() - started)
"""


def write_rollouts(path: Path, n: int, repeats: int) -> Path:
    rng = random.Random(n)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            task, rollout = divmod(i, repeats)
            tokens = rng.randint(100, 5000)
            record = {
                **RECORD,
                "reward": float(rng.random() < 0.6),
                "_ng_task_index": task,
                "_ng_rollout_index": rollout,
                "_gym": {
                    "id": f"0123456789ab:{task}:{rollout}",
                    "status": "ok" if rng.random() > 0.02 else "failed",
                    "error": {"class": "ModelCallError", "message": "HTTP 429"},
                    "usage": {
                        "input_tokens": tokens,
                        "output_tokens": 12,
                        "total_tokens": tokens + 12,
                    },
                    "latency_s": rng.lognormvariate(-1, 1),
                    "model_calls": 2,
                    "tool_calls": 1,
                    "cost_usd": tokens * 1e-6,
                },
            }
            fh.write(json.dumps(record) + "\n")
    return path


def child(what: str, path: Path, repeats: int, tasks: Path) -> tuple[float, float]:
    stats = measured([PY, "-c", CHILD, what, str(path), str(repeats), str(tasks)])
    if stats.returncode != 0:
        raise RuntimeError(stats.output[-2000:])
    return stats.max_rss_mb, float(stats.output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rss = {}
        for n in (args.small, args.large):
            path = write_rollouts(work / f"r{n}.jsonl", n, args.repeats)
            rss[n], seconds = child("aggregate", path, args.repeats, work / f"t{n}.jsonl")
            emit(f"aggregate.rollouts_{n}.peak_rss_mb", rss[n])
            emit(f"aggregate.rollouts_{n}.rollouts_per_s", n / seconds)
            compare_rss, compare_s = child("compare", path, args.repeats, work / "unused")
            emit(f"compare.rollouts_{n}.peak_rss_mb", compare_rss)
            emit(f"compare.rollouts_{n}.rollouts_per_s", 2 * n / compare_s)
        emit("aggregate.growth_ratio", rss[args.large] / rss[args.small])


if __name__ == "__main__":
    main()
