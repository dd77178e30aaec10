"""paths: a linked config in, its server's file paths checked and made absolute (diagnostics added).

Checked here, beyond what merge and link check (includes, input rows): server fields marked
`x-path` in their schema (a judge's prompt template), inline-or-file template fields, and that the
rollouts file can be created. A server's file is found as NeMo Gym finds it: NeMo Gym runs each
server in its own folder (`<root>/<type>/<implementation>/`), so that folder is searched first, then
NeMo Gym's roots, then next to the file that names it (gym_compile.searchpath). The plan holds the
absolute path, so it runs the same from any directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gym_compile import files
from gym_compile import schema_catalog as catalog
from gym_compile.assets import templates_dir
from gym_compile.atomic import output_refusal
from gym_compile.diagnostics import CMDLINE, Diagnostic, json_path
from gym_compile.files import TEMPLATE_BYTES, real_path, refusal, too_large
from gym_compile.job import Job
from gym_compile.link import Linked
from gym_compile.nemo.roots import server_folder
from gym_compile.plan import metrics_path
from gym_compile.searchpath import Place, ambiguity, search
from gym_compile.sourcemap import display_name, display_path
from gym_compile.validate import Server, Validated

#: Fields that hold inline template text or, when they look like a file name, a path.
INLINE_OR_FILE = {("resources_servers", "equivalence_llm_judge"): ("judge_prompt_template",)}


def check_paths(linked: Linked) -> None:
    v = linked.validated
    for server in v.servers.values():
        if server.valid:
            _server_paths(v, server)
    if linked.job is not None:
        _outputs(v, linked.job)


def _server_paths(v: Validated, server: Server) -> None:
    schema = server.schema
    fields = [
        rel
        for rel, value, kind in catalog.marked(schema, server.config, "x-path")
        if kind == "file" and isinstance(value, str) and value and "datasets" not in rel
    ]
    for name in INLINE_OR_FILE.get((server.type, server.implementation), ()):
        value = server.config.get(name)
        if isinstance(value, str) and value and "\n" not in value and "{" not in value:
            fields.append((name,))
    for rel in fields:
        node = server.config
        for part in rel[:-1]:
            node = node[part]
        at = server.source_path + (server.renamed.get(rel[0], rel[0]),) + rel[1:]
        found = _file(v, server, at, node[rel[-1]])
        if found is not None:
            node[rel[-1]] = found


def _file(v: Validated, server: Server, at: tuple[Any, ...], value: str) -> str | None:
    """The absolute path to use, or None (the value stays: a packaged template, or reported)."""
    if v.resolved.is_failed(at):
        return None
    folder = server_folder(v.resolved.merged.roots, server.type, server.implementation)
    first = [Place(folder, f"folder of {server.type}/{server.implementation}")] if folder else []
    origins = v.resolved.origins.get(tuple(at))
    loc = origins[-1].location if origins and origins[-1].location else v.location(at)
    written_in = None if loc is None or loc.file == CMDLINE else real_path(loc.file)
    found = search(value, v.resolved.merged.roots, written_in, first=first)
    warning = ambiguity(found, value, v.location(at), json_path(at))
    if warning is not None:
        v.diagnostics.append(warning)
    path = found.path
    refused = refusal(path, directory_ok=True)  # a FIFO, a device, /proc: never read
    if refused is not None:
        _report(v, at, f"file {display_path(path)} {refused}", found.looked_hints())
        return None
    if found.exists:
        size = path.stat().st_size
        if size > TEMPLATE_BYTES:
            _report(
                v, at, f"file {display_path(path)} {too_large(size, TEMPLATE_BYTES, 'a template')}"
            )
            return None
        if not os.access(path, os.R_OK):
            _report(v, at, f"file {display_path(path)} is not readable (permission denied)")
            return None
        return str(path)
    if not os.path.isabs(value) and (templates_dir() / value).is_file():
        return None  # a packaged template, found by name at run time
    why = "is a directory, not a file" if files.is_dir(path) else "does not exist"
    _report(v, at, f"file {display_name(value)} {why}", found.looked_hints())
    return None


def _outputs(v: Validated, job: Job) -> None:
    """What gym-run will write must be a regular file or nothing yet: never a device, a FIFO or
    /proc (replacing /dev/null as root is what an atomic rename does)."""
    rollouts: tuple[Any, ...] = ("output_jsonl_fpath",)
    outputs = [
        (job.output, "", rollouts),
        (metrics_path(job.output), " (the metrics file)", rollouts),
    ]
    if job.response_cache is not None:
        cache_at = (
            ("response_cache", "path") if v.location(("response_cache", "path")) else rollouts
        )
        outputs.append((Path(job.response_cache["path"]), " (the response cache)", cache_at))
    for path, what, at in outputs:
        why = output_refusal(path)
        if why is not None and not files.is_dir(path):  # a directory is reported by the job
            _report(v, at, f"cannot write {display_path(path)}{what}: it {why}")
    _output_dir(v, job.output)


def _output_dir(v: Validated, output: Path) -> None:
    """The rollouts file must be creatable: its nearest existing ancestor is a writable directory."""
    parent = output.parent
    while not files.exists(parent) and parent != parent.parent:
        parent = parent.parent
    at = ("output_jsonl_fpath",)
    if not files.is_dir(parent):
        _report(
            v,
            at,
            f"cannot create {display_path(output)}: {display_path(parent)} is a file, not a directory",
        )
    elif not os.access(parent, os.W_OK | os.X_OK):
        _report(
            v, at, f"cannot create {display_path(output)}: {display_path(parent)} is not writable"
        )


def _report(v: Validated, at: tuple[Any, ...], message: str, looked: tuple[str, ...] = ()) -> None:
    v.diagnostics.append(
        Diagnostic(
            "GYM003",
            message,
            v.location(at),
            json_path(at),
            related=v.related(at),
            hints=looked,
        )
    )
