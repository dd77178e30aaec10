"""Why an environment did not run: the outcome of its child and its servers' logs -> one class.

The classes (RULES; first match wins, on the failure's message, then the log of the server gym-run
named, then the other logs): missing Python module (which), needs docker / a sandbox, a GPU, the
server's own virtualenv, the network, an API key; the stand-in's answer refused by the verifier; a
config value the user must give; a program that is not installed; data that is not there (NeMo
Gym downloads or prepares it); else `other` with the last exception line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TAIL_BYTES = 1_000_000  # the whole log, unless it is long
_MODULE = re.compile(r"No module named '([\w.]+)'")
_IMPORT = re.compile(r"ImportError: (?:cannot import name '(\w+)'|(.+))")
_SERVER = re.compile(r"server '([^']+)'")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXC = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit|Interrupt)|AssertionError)\b:?(.*)$")

# (class, patterns): the first class with a pattern found in the log is the reason
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "needs docker/sandbox",
        (
            "docker.errors",
            "DockerException",
            "docker.sock",
            "Sandbox provider reference",
            "apptainer",
            "singularity",
            "sandbox_fusion",
            "podman",
        ),
    ),
    ("needs a GPU", ("'GPU': ",)),  # Ray: "No available node types can fulfill {..., 'GPU': 0.25}"
    ("needs its own virtualenv (NeMo Gym's per-server setup)", ("source .venv/bin/activate",)),
    (
        "needs network",
        (
            "Network is unreachable",
            "Temporary failure in name resolution",
            "Name or service not known",
            "Could not resolve host",
            "OfflineModeIsEnabled",
            "LocalEntryNotFoundError",
            "offline mode is enabled",
            "Cannot connect to host",
            "Max retries exceeded",
        ),
    ),
    (
        "needs API key",
        (
            "API key",
            "api_key must be set",
            "AuthenticationError",
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "invalid_api_key",
        ),
    ),
    ("stand-in's answer refused by the verifier", ("JudgeOutputError", "failed schema validation")),
    (
        "config value the user must give",
        ("MissingMandatoryValue", "Missing mandatory value", "is not configured"),
    ),
    ("program not installed", ("command not found", "not found on PATH", "executable not found")),
    ("data not there (download or prepare it)", ("FileNotFoundError", "No such file or directory")),
)


@dataclass(frozen=True)
class Verdict:
    outcome: (
        str  # ran | no_input | compile_refused | start_failed | rollout_failed | timeout | error
    )
    reason: str = ""  # the class within the outcome
    detail: str = ""  # one line: what says so


def classify(outcome: dict[str, Any], logs: Path) -> Verdict:
    """The verdict on a child's outcome (nemo_envs_run.child) with the run's log folder."""
    phase = outcome.get("phase")
    message = str(outcome.get("message") or "")
    if phase == "ran":
        return Verdict("ran", "", f"reward {outcome.get('reward')}")
    if phase == "start":
        named = _SERVER.search(message)
        reason, detail = classify_logs(logs, named.group(1) if named else None)
        if reason == "other" and "did not answer" in message:
            reason = "never answered"
        elif reason == "other" and "exited with code 0" in message:
            reason = "exits at once (not a standalone server)"
        return Verdict("start_failed", reason, detail or _one_line(message))
    if phase == "rollout":
        reason, detail = classify_text(message)
        if reason == "other":
            reason, detail = classify_logs(logs, None)
        kind = str(outcome.get("error_class") or "?")
        if reason in ("other", ""):
            return Verdict("rollout_failed", kind, _one_line(message))
        return Verdict("rollout_failed", f"{kind}: {reason}", detail)
    if phase == "timeout":
        reason, detail = classify_logs(logs, None)
        if reason in ("other", ""):
            return Verdict("timeout", "no record in time", _one_line(message))
        return Verdict("timeout", reason, detail)
    return Verdict("error", message.split(":", 1)[0][:60], _one_line(message))


def classify_logs(logs: Path, first: str | None) -> tuple[str, str]:
    """(class, the line that says so) from the servers' logs, the named server's first."""
    paths = sorted(logs.glob("*.log")) if logs.is_dir() else []
    if first is not None:
        named = [p for p in paths if p.stem == _safe(first)]
        paths = named + [p for p in paths if p not in named]
    fallback: tuple[str, str] = ("", "")
    for path in paths:
        text = _tail(path)
        reason, detail = classify_text(text)
        if reason != "other":
            return reason, detail
        if detail and not fallback[1]:
            fallback = ("other", detail)
    return fallback if fallback[1] else ("other", "")


def classify_text(text: str) -> tuple[str, str]:
    """A log's text -> (class, detail); ("other", last exception line) when no rule matches."""
    module = _MODULE.search(text)
    if module is not None:
        return f"missing module {module.group(1).split('.')[0]}", module.group(0)
    for reason, patterns in RULES:
        for pattern in patterns:
            at = text.find(pattern)
            if at >= 0:
                return reason, _line_at(text, at)
    imported = _IMPORT.search(text)
    if imported is not None:
        return "import error", _one_line(imported.group(0))
    return "other", last_exception(text)


def last_exception(text: str) -> str:
    for line in reversed(text.splitlines()):
        match = _EXC.match(line.strip())
        if match:
            return _one_line(line.strip())
    return ""


def _line_at(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return _one_line(text[start : end if end >= 0 else len(text)].strip())


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - _TAIL_BYTES))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _one_line(text: str, limit: int = 240) -> str:
    line = " ".join(_ANSI.sub("", text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _safe(name: str) -> str:
    """The log file name gym-run gives an instance (gym_run.servers.nemo_process._safe)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "server"
