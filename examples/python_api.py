"""gym-compile and gym-run from Python, notebook style (each `# %%` is a cell): compile the judge
example, watch rollouts arrive, stop early and resume, read the aggregate metrics, re-verify with
a changed judge prompt, compare the two runs. Offline: the built-in stand-in plays policy and judge.

    python examples/python_api.py [OUTPUT_DIR]      (default: results/python_api)

In a notebook, use `await` directly instead of asyncio.run(main()).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gym_run.api import Run, compare, reverify, run

from gym_compile.api import compile_plan

HERE = Path(__file__).resolve().parent
CONFIGS = [
    HERE / "judge_example" / "judge_example.yaml",
    HERE / "judge_example" / "stand_in_models.yaml",
]
JUDGE = "equivalence_llm_judge.resources_servers.equivalence_llm_judge"


async def main(out: Path) -> None:
    # %% Compile: a plan object and every diagnostic (nothing raised for a config mistake)
    compiled = compile_plan(
        CONFIGS, [f"+output_jsonl_fpath={out / 'rollouts.jsonl'}", "+num_repeats=4"]
    )
    print(compiled.render() or "compiled without diagnostics")
    plan = compiled.raise_for_errors()
    print(f"plan {plan.content_hash[:19]}, rollouts -> {plan.rollouts_path}")

    # %% Run, watching records as they land on disk; stop after five
    seen = 0
    async with Run(plan, overwrite=True) as records:
        async for record in records:
            seen += 1
            print(
                f"  task {record['_ng_task_index']} rollout {record['_ng_rollout_index']}: "
                f"reward {record.get('reward')}"
            )
            if seen == 5:
                break  # leaving the block stops the run; what is on disk stays

    # %% Resume: only the missing rollouts run, none twice
    result = await run(plan, resume=True, fail_under=["pass@4=0.5"])
    agg = result.aggregate
    print(
        f"{result.counts['ok']} ok, {result.counts['failed']} failed; exit code {result.exit_code}"
    )
    print(
        f"mean reward {agg['outcome']['reward_mean']:.3f}, pass rate {agg['outcome']['pass_rate']:.3f}"
    )
    print("pass@k:", agg["repeats"]["pass@k"], "mean@k:", agg["repeats"]["mean@k"])
    print("tokens per rollout:", agg["fields"]["total_tokens"]["mean"])

    # %% Re-verify with a changed judge prompt: the judge is called again, the policy never.
    # (The stand-in judge only understands the built-in prompt, so here every verdict turns
    # unparseable and the reward drops: a real judge would read the new prompt.)
    stricter = compile_plan(
        CONFIGS,
        [
            f"+output_jsonl_fpath={out / 'rollouts.jsonl'}",
            "+num_repeats=4",
            f"+{JUDGE}.judge_prompt_template='Is {{generated_answer}} the same as {{expected_answer}}?'",
        ],
    ).raise_for_errors()
    rescored = await reverify(
        stricter, result.rollouts_path, out / "rescored.jsonl", overwrite=True
    )
    print(f"re-verified: mean reward {rescored.aggregate['outcome']['reward_mean']:.3f}")

    # %% Compare the two runs task by task
    comparison = compare(result.rollouts_path, rescored.rollouts_path)
    print(
        f"B better on {comparison.better} tasks, worse on {comparison.worse}, "
        f"same on {comparison.same}"
    )


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/python_api")))
