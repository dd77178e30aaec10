"""NeMo Gym's own server configs compile: every one of nemo-gym 0.4.0 and 0.7.0, each file alone.

Each file is compiled in this process from the root of the unpacked wheel (NeMo Gym's users run
from there) with an env.yaml of the usual policy_*/judge_* variables (tests/nemo_corpus_run.py).
A file that does not compile must be listed in tests/nemo_corpus_expected.yaml with exactly its
error codes and a reason checked against NeMo Gym's code; anything else fails, and so does a
listed file that now compiles (the list only shrinks on purpose). The table, timings and a fresh
list: python benchmarks/nemo_corpus.py [--write-expected].
"""

from __future__ import annotations

import pytest

from tests.nemo_corpus import nemo_gym_tree
from tests.nemo_corpus_run import ENV_YAML, compile_tree, judge, load_expected

#: at least this many server config files in each release (a smaller tree is not the real one)
AT_LEAST = {"0.4.0": 220, "0.7.0": 370}


@pytest.mark.parametrize("version", sorted(AT_LEAST))
def test_every_nemo_gym_server_config_compiles_or_is_listed(version, tmp_path):
    tree = nemo_gym_tree(version)
    env = tmp_path / "env.yaml"
    env.write_text(ENV_YAML, encoding="utf-8")
    outcomes = compile_tree(tree, env)
    assert len(outcomes) >= AT_LEAST[version]
    verdict = judge(outcomes, load_expected(version))
    problems = [f"CRASH {o.file}: {o.crash.strip()}" for o in verdict.crashed]
    problems += [f"{o.file}: {why}" for o, why in verdict.other]
    problems += [
        f"{f}: listed in tests/nemo_corpus_expected.yaml but compiles" for f in verdict.stale
    ]
    assert not problems, f"nemo-gym {version}: {len(problems)} unexpected outcomes\n" + "\n".join(
        problems
    )
    assert verdict.compiled, "nothing compiled: the corpus run is broken"
