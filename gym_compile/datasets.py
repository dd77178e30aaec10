"""datasets: a server's `datasets:` entries checked by NeMo Gym's rules, and how to get a missing one.

NeMo Gym validates `datasets` on its base server config class (nemo_gym/config_types.py
`BaseRunServerTypeConfig`), so the entries of every server are checked the same way here, whatever
its implementation, known or not: the fields by schemas/dataset.schema.json, the rules across fields
below. train/validation sets are downloaded on demand and benchmark sets made by their
prepare_script, so only the job's input must be on disk; the message then says how to get it.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from gym_compile import schema_catalog as catalog
from gym_compile import schema_errors
from gym_compile.diagnostics import Diagnostic, has_errors, json_path
from gym_compile.schema_errors import Checked
from gym_compile.sourcemap import display_path

Path_ = tuple[Any, ...]
DOWNLOADED = ("train", "validation")
LEGACY = {"gitlab_identifier": "gitlab", "huggingface_identifier": "huggingface"}


def entry_problems(v: Checked, entry: dict[str, Any], at: Path_) -> list[Diagnostic]:
    """The rules NeMo Gym's DatasetConfig validators enforce beyond the fields' types."""
    out: list[Diagnostic] = []
    kind, name = entry.get("type"), entry.get("name", "?")
    if kind in DOWNLOADED and entry.get("license") is None and not v.resolved.is_failed(at):
        out.append(
            Diagnostic(
                "GYM054",
                f"{kind} dataset '{name}' needs a license: NeMo Gym refuses the config without one",
                v.resolved.merged.source.key_at(at),
                json_path(at),
                hints=('license: "Apache 2.0"   (the allowed values: gym-compile schema)',),
            )
        )
    legacy = [k for k in LEGACY if entry.get(k) is not None]
    if entry.get("source") is not None and legacy:
        out.append(
            Diagnostic(
                "GYM054",
                f"dataset '{name}' names its source twice (source and {' and '.join(legacy)}): "
                "NeMo Gym refuses the config",
                v.resolved.merged.source.key_at(at + (legacy[0],)),
                json_path(at + (legacy[0],)),
                hints=("keep source: and delete the deprecated field",),
            )
        )
    elif legacy and kind != "benchmark":
        first = legacy[0]
        fields = entry[first] if isinstance(entry[first], dict) else {}
        block = ", ".join(
            [f"type: {LEGACY[first]}"] + [f"{k}: {val}" for k, val in fields.items() if val]
        )
        out.append(
            Diagnostic(
                "GYM055",
                f"{first} is deprecated in NeMo Gym: write the dataset's source as one source: block",
                v.resolved.merged.source.key_at(at + (first,)),
                json_path(at + (first,)),
                severity="warning",
                hints=(f"source: {{{block}}}",)
                if len(legacy) == 1
                else (
                    "both identifiers (a gitlab primary with a huggingface fallback) still work",
                ),
            )
        )
    return out


def obtain_hints(entry: dict[str, Any], declared_in: str | None) -> tuple[str, ...]:
    """How to get a dataset that is not on disk, with NeMo Gym's own command for it."""
    kind, target = entry.get("type"), str(entry.get("jsonl_fpath", ""))
    config = declared_in or "<config file>"
    if kind == "example":
        return (
            "an example set is committed with its environment (NeMo Gym's example validation "
            "requires the file)",
        )
    if entry.get("prepare_script"):
        return (
            f"this {kind} set is made by its prepare_script ({entry['prepare_script']}): run "
            f"gym eval prepare --config {shlex.quote(config)}   (NeMo Gym)",
        )
    source = _source(entry)
    if source is None:
        why = "a benchmark set needs its prepare_script" if kind == "benchmark" else "no source"
        return (f"the config declares no way to download it ({why}): put the file there",)
    if source.get("type") == "gitlab":
        command = "gym dataset download --storage gitlab"
        args = [
            f"+dataset_name={source.get('dataset_name')}",
            f"+version={source.get('version')}",
            f"+artifact_fpath={source.get('artifact_fpath')}",
        ]
    else:
        command = "gym dataset download"
        args = [f"+repo_id={source.get('repo_id')}"]
        if source.get("artifact_fpath"):
            args.append(f"+artifact_fpath={source['artifact_fpath']}")
        elif kind in DOWNLOADED:
            args.append(f"+split={kind}")
    args.append(f"+output_fpath={target}")
    return (
        f"NeMo Gym downloads this {kind} set on demand; get it with: {command} "
        + " ".join(shlex.quote(a) for a in args),
    )


def _source(entry: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(entry.get("source"), dict):
        return entry["source"]
    for key, backend in LEGACY.items():
        if isinstance(entry.get(key), dict):
            return {"type": backend, **entry[key]}
    return None


def declared_in(v: Checked, at: Path_) -> str | None:
    """The config file a dataset entry is written in, as the user would pass it."""
    loc = v.resolved.merged.source.key_at(at)
    if loc is None or loc.file.startswith("<"):
        return None
    return display_path(Path(loc.file).resolve())


def check_datasets_field(v: Checked, datasets: Any, at: Path_) -> bool:
    """`datasets:` of one server: a list of entries, each checked against schemas/dataset.schema.json
    (as every schema is, so diagnostics read alike) and by the rules above."""
    if datasets is None:
        return True
    if not isinstance(datasets, list):
        v.diagnostics.append(
            Diagnostic(
                "GYM031",
                f"datasets must be a list of datasets, got {schema_errors.kind(datasets)}",
                v.resolved.merged.source.at(at),
                json_path(at),
                hints=(
                    "datasets: [{name: example, type: example, jsonl_fpath: data/example.jsonl}]",
                ),
            )
        )
        return False
    ok = True
    for i, entry in enumerate(datasets):
        ok = (
            schema_errors.check(v, catalog.validator("dataset.schema.json"), entry, at + (i,), {})
            and ok
        )
        if isinstance(entry, dict):
            problems = entry_problems(v, entry, at + (i,))
            v.diagnostics.extend(problems)
            ok = ok and not has_errors(problems)
    return ok
