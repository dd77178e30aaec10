"""The aiohttp runtime that executes a compiled plan and writes rollouts."""
