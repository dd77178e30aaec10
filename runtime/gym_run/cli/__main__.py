"""`python -m gym_run.cli` is `gym-run` (tests and benchmarks run it so, without the console script)."""

from gym_run.cli.commands import main

main()
