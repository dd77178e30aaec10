"""Compiling NeMo Gym's own server configs as its users run them, and judging the outcome.

Every server config file of a NeMo Gym tree (each YAML file under `<server type>/.../configs/`) is
compiled alone, in this process, from the tree's root (the working directory, as NeMo Gym users
run it) with an env.yaml holding the usual policy_*/judge_* variables. A file that uses the
`policy_model` instance without defining it is compiled with NeMo Gym's OpenAI model config beside
it, as `gym env start --config FILE --model-type openai_model` composes them (NeMo Gym refuses such a
file alone too). Each outcome is then one of: compiles; fails for the reason listed in
tests/nemo_corpus_expected.yaml (the same error codes); anything else; a crash (an exception).
Used by tests/test_nemo_corpus.py and benchmarks/nemo_corpus.py.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gym_compile.compiler import compile_config
from gym_compile.diagnostics import Diagnostic
from gym_compile.merge import merge
from gym_compile.options import Options

SERVER_TYPES = ("resources_servers", "responses_api_agents", "responses_api_models")
MODEL_CONFIG = "responses_api_models/openai_model/configs/openai_model.yaml"
EXPECTED = Path(__file__).with_name("nemo_corpus_expected.yaml")
ENV_YAML = """\
policy_base_url: https://api.openai.com/v1
policy_api_key: sk-corpus-test-not-a-real-key-0000
policy_model_name: gpt-4.1-2025-04-14
judge_base_url: https://api.openai.com/v1
judge_api_key: sk-corpus-test-not-a-real-key-1111
judge_model_name: gpt-4.1-2025-04-14
"""
TODO = "TODO"  # the reason of an entry nobody has checked yet: the test refuses it
_POLICY = re.compile(r"\bpolicy_model\b")


@dataclass
class Outcome:
    file: str  # relative to the tree
    ok: bool
    codes: tuple[str, ...] = ()  # the error codes, sorted, each once
    first: str = ""  # the first error, one line
    seconds: float = 0.0
    crash: str = ""  # the exception, when compiling raised one
    with_model: bool = False


@dataclass
class Verdict:
    compiled: list[Outcome] = field(default_factory=list)
    listed: list[Outcome] = field(default_factory=list)
    other: list[tuple[Outcome, str]] = field(default_factory=list)  # with what is wrong
    crashed: list[Outcome] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # listed, but compiles or is gone


def server_configs(tree: Path) -> list[str]:
    """Every server config file of a tree, relative and sorted (nested folders included)."""
    out = []
    for stype in SERVER_TYPES:
        for dirpath, dirnames, filenames in os.walk(tree / stype):
            dirnames.sort()
            if "configs" not in Path(dirpath).relative_to(tree).parts:
                continue
            out += [
                str((Path(dirpath) / n).relative_to(tree))
                for n in filenames
                if n.endswith((".yaml", ".yml"))
            ]
    return sorted(out)


def uses_undefined_policy_model(path: Path) -> bool:
    """The file, with the files it includes, names the policy_model instance (a reference, a
    directive) but does not define it: NeMo Gym users add a model config for it."""
    merged = merge([path], None, [], partial=True)
    if "policy_model" in merged.data:
        return False
    return any(_POLICY.search(doc.text) for doc in merged.configs)


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def compile_file(tree: Path, rel: str, env: Path) -> Outcome:
    """One file, compiled in this process; the caller has made the tree the working directory."""
    files = [Path(rel)]
    with_model = rel != MODEL_CONFIG and uses_undefined_policy_model(tree / rel)
    if with_model:
        files.append(Path(MODEL_CONFIG))
    start = time.perf_counter()
    try:
        result = compile_config(files, [], Options(env=env, env_required=True))
    except Exception as exc:  # a crash is an outcome to report, never a reason to stop
        tb = traceback.format_exception(exc)
        return Outcome(
            rel, False, (), "", time.perf_counter() - start, "".join(tb[-3:]), with_model
        )
    seconds = time.perf_counter() - start
    errors = [d for d in result.diagnostics if d.severity == "error"]
    return Outcome(
        rel,
        result.ok,
        tuple(sorted({d.code for d in errors})),
        _line(errors[0]) if errors else "",
        seconds,
        "",
        with_model,
    )


def compile_tree(tree: Path, env: Path, files: list[str] | None = None) -> list[Outcome]:
    with working_directory(tree):
        return [compile_file(tree, rel, env) for rel in files or server_configs(tree)]


def judge(outcomes: list[Outcome], expected: dict[str, dict[str, Any]]) -> Verdict:
    v = Verdict()
    seen = set()
    for o in outcomes:
        seen.add(o.file)
        entry = expected.get(o.file)
        if o.crash:
            v.crashed.append(o)
        elif o.ok:
            v.compiled.append(o)
            if entry is not None:
                v.stale.append(o.file)
        elif entry is None:
            v.other.append((o, f"not listed: {', '.join(o.codes)}: {o.first}"))
        elif tuple(sorted(entry.get("codes", []))) != o.codes:
            v.other.append((o, f"listed as {entry.get('codes')}, now {list(o.codes)}: {o.first}"))
        elif not str(entry.get("reason", "")).strip() or str(entry["reason"]).startswith(TODO):
            v.other.append((o, "listed without a checked reason"))
        else:
            v.listed.append(o)
    v.stale += sorted(f for f in expected if f not in seen)
    return v


def load_expected(version: str, path: Path = EXPECTED) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(data.get(version) or {})


def dump_expected(header: str, data: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The expectations file: the header comment, then per release one entry per file, each reason
    on one line (so a diff shows exactly which file changed)."""
    out = [header.rstrip(), ""]
    for version in sorted(data):
        out.append(f'"{version}":')
        for name, entry in sorted(data[version].items()):
            reason = yaml.safe_dump(entry["reason"], width=1_000_000, allow_unicode=True)
            out += [
                f"  {name}:",
                f"    codes: [{', '.join(entry['codes'])}]",
                "    reason: " + reason.strip().removesuffix("...").strip(),
            ]
    return "\n".join(out) + "\n"


def _line(d: Diagnostic) -> str:
    where = f"{d.location}: " if d.location else ""
    return f"{where}{d.code} {d.message}".replace("\n", " ")[:300]
