"""`gym-run`'s command line: argument parsing and exit codes; the parts below it do the work."""

from gym_run.cli.commands import cli, main

__all__ = ["cli", "main"]
