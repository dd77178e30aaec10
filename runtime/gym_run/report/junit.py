"""Final rollout records in, a JUnit XML file out: one test case per rollout, for CI systems.

A failed rollout is an `<error>` (it produced no answer: the class and message of what went wrong);
an ok rollout whose reward is below the pass threshold is a `<failure>` (what the verifier
compared: expected and extracted answer, the final answer, the judge's verdict); a passing one is
a bare test case. The counts go in the header, so test cases are spooled to a temporary file while
records stream in, and the XML is written atomically at the end; memory stays flat.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from gym_compile.atomic import atomic_file
from gym_run.messages import last_text
from gym_run.metrics.aggregate import is_ok, outcome_reward, record_index

MAX_TEXT = 2000
# Characters XML 1.0 cannot carry at all (model output may hold any of them).
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str, limit: int = MAX_TEXT) -> str:
    text = _INVALID_XML.sub("\ufffd", text)
    return (
        text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"
    )


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _question(record: Mapping[str, Any]) -> str:
    params = record.get("responses_create_params") or {}
    raw = params.get("input")
    text = raw if isinstance(raw, str) else last_text(raw, "user") or ""
    return " ".join(text.split())[:80]


class JUnitWriter:
    """add() every final record (in task order for a readable file), then close() or abort()."""

    def __init__(self, path: str, *, suite: str = "gym-run", pass_threshold: float = 1.0) -> None:
        self.path = path
        self.suite = suite
        self.pass_threshold = pass_threshold
        self.tests = self.failures = self.errors = 0
        self.time = 0.0
        self._cases = tempfile.TemporaryFile("w+", encoding="utf-8", prefix="gym-run-junit-")

    def add(self, record: Mapping[str, Any]) -> None:
        task, rollout = record_index(record)
        gym = record.get("_gym") or {}
        latency = gym.get("latency_s")
        seconds = float(latency) if isinstance(latency, (int, float)) else 0.0
        self.tests += 1
        self.time += seconds
        question = _question(record)
        name = f"task {task} rollout {rollout}" + (f": {question}" if question else "")
        head = (
            f"    <testcase classname={quoteattr(clean(self.suite, 200))} "
            f"name={quoteattr(clean(name, 200))} time={quoteattr(f'{seconds:.3f}')}"
        )
        body = self._body(record)
        self._cases.write(f"{head}/>\n" if body is None else f"{head}>\n{body}    </testcase>\n")

    def _body(self, record: Mapping[str, Any]) -> str | None:
        gym = record.get("_gym") or {}
        if not is_ok(record):
            self.errors += 1
            error = gym.get("error") or {}
            cls = str(error.get("class") or "Error")
            message = f"{cls}: {error.get('message', '')}"
            details = [message, f"id: {gym.get('id', '')}"]
            if error.get("status") is not None:
                details.append(f"HTTP status: {error['status']}")
            if error.get("attempts"):
                details.append(f"attempts: {error['attempts']}")
            if error.get("request_id"):
                details.append(f"request id: {error['request_id']}")
            return (
                f"      <error type={quoteattr(clean(cls, 200))} message={quoteattr(clean(message, 500))}>"
                f"{escape(clean(chr(10).join(details)))}</error>\n"
            )
        reward = outcome_reward(record)
        if reward >= self.pass_threshold:
            return None
        self.failures += 1
        lines = [
            f"reward {reward:g} < pass threshold {self.pass_threshold:g}",
            f"id: {gym.get('id', '')}",
        ]
        for key in ("expected_answer", "extracted_answer", "judge_verdict"):
            if record.get(key) is not None:
                lines.append(f"{key}: {clean(_show(record[key]), 500)}")
        answer = last_text((record.get("response") or {}).get("output"), "assistant")
        if answer:
            lines.append(f"final answer: {clean(answer, 1000)}")
        message = lines[0]
        return (
            f'      <failure type="reward" message={quoteattr(message)}>'
            f"{escape(clean(chr(10).join(lines)))}</failure>\n"
        )

    def close(self) -> None:
        """Writes the file (atomically): header with the counts, the spooled cases, the footer."""
        counts = (
            f'tests="{self.tests}" failures="{self.failures}" errors="{self.errors}" '
            f'skipped="0" time="{self.time:.3f}"'
        )
        try:
            with atomic_file(self.path) as out:
                out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
                out.write(f'<testsuites name="gym-run" {counts}>\n')
                out.write(f"  <testsuite name={quoteattr(clean(self.suite, 200))} {counts}>\n")
                self._cases.seek(0)
                for line in self._cases:
                    out.write(line)
                out.write("  </testsuite>\n</testsuites>\n")
        finally:
            self._cases.close()

    def abort(self) -> None:
        """Drops the spooled cases (after close() this does nothing)."""
        self._cases.close()
