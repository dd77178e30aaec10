"""Schemas derived from NeMo Gym's sources: time per server cold (alone: nothing parsed yet; in a
run over all servers: NeMo Gym's shared modules parsed once; both with an empty cache) and cached
(a new process reading the disk cache), and how many implementations derive completely.

python benchmarks/bench_nemo_schemas.py [--versions 0.4.0 0.7.0]

The trees are NeMo Gym's released wheels, fetched by pip into ~/.cache/gym-compile (as the tests
do). Complete: every type read; keys exact: every object's key set known but some nested type
accepts anything (OpenAI's types, which are not read); incomplete: an object's key set is
uncertain (unknown keys there are warnings); fails: no config class found.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import REPO, emit

sys.path.insert(0, str(REPO))

from gym_compile.nemo import cache  # noqa: E402
from gym_compile.nemo.derive import Derived  # noqa: E402
from gym_compile.nemo.roots import SERVER_TYPES  # noqa: E402
from tests.nemo_corpus import nemo_gym_tree  # noqa: E402


def servers(root: Path) -> list[tuple[str, str, Path]]:
    return [
        (t, app.parent.name, app)
        for t in SERVER_TYPES
        for app in sorted((root / t).glob("*/app.py"))
    ]


def kind(d: Derived) -> str:
    if d.schema is None:
        return "fails"
    if d.complete:
        return "complete"
    uncertain = "x-incomplete" in d.schema or any(
        "x-incomplete" in sub for sub in d.schema.get("$defs", {}).values()
    )
    return "incomplete" if uncertain else "keys_exact"


def measure(version: str) -> None:
    root = nemo_gym_tree(version)
    found = servers(root)
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["GYM_COMPILE_CACHE_DIR"] = tmp
        cache.clear_memo()
        cold: list[float] = []
        kinds: Counter[str] = Counter()
        for stype, impl, app in found:
            start = time.perf_counter()
            d = cache.cached_derive(app, stype, impl, [root])
            cold.append(time.perf_counter() - start)
            kinds[kind(d)] += 1
        isolated: list[float] = []  # each alone, as `gym-compile` of one file: nothing parsed yet
        for stype, impl, app in found:
            cache.clear_memo()
            start = time.perf_counter()
            from gym_compile.nemo.derive import derive

            derive(app, stype, impl, [root])
            isolated.append(time.perf_counter() - start)
        cache.clear_memo()  # as a new process: parsed files and memo gone, disk cache kept
        cached: list[float] = []
        for stype, impl, app in found:
            start = time.perf_counter()
            cache.cached_derive(app, stype, impl, [root])
            cached.append(time.perf_counter() - start)
    tag = f"nemo_schemas.{version}"
    emit(f"{tag}.implementations", len(found))
    for k in ("complete", "keys_exact", "incomplete", "fails"):
        emit(f"{tag}.{k}", kinds[k])
    emit(f"{tag}.alone_cold_ms_median", statistics.median(isolated) * 1000)
    emit(f"{tag}.alone_cold_ms_max", max(isolated) * 1000)
    emit(f"{tag}.cold_ms_median", statistics.median(cold) * 1000)
    emit(f"{tag}.cold_ms_max", max(cold) * 1000)
    emit(f"{tag}.cold_s_total", sum(cold))
    emit(f"{tag}.cached_ms_median", statistics.median(cached) * 1000)
    emit(f"{tag}.cached_ms_max", max(cached) * 1000)
    emit(f"{tag}.cached_s_total", sum(cached))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", nargs="+", default=["0.4.0", "0.7.0"])
    args = parser.parse_args()
    for version in args.versions:
        measure(version)


if __name__ == "__main__":
    main()
