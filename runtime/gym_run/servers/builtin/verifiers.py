"""A finished rollout in, a rule-scored one out: `answer_match` (normalised exact / multiple choice).

The checks users reach for before paying for a judge. Both modes compare the policy's final
answer with the row's `expected_answer` (a string, a number, or a list of accepted answers) and
record `extracted_answer`, what was actually compared, so a surprising reward can be explained.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from gym_run.defaults import default_of
from gym_run.messages import extract, last_text
from gym_run.servers.builtin.resources import ResourcesServer

_MARKER = re.compile(r"(?i:final\s+answer|answer)\s*(?:is|:|=)?\s*[:\-]?\s*(.+)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_ARTICLES = {"a", "an", "the"}
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def final_answer(text: str) -> str:
    """What follows the last "Answer:" / "the answer is", else the last \\boxed{}, else the text."""
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1]
    lines = [m.group(1) for m in _MARKER.finditer(text)]
    return lines[-1] if lines else text


def normalise(text: str, *, case_sensitive: bool = False) -> str:
    """NFKC, markdown emphasis and end punctuation off, articles out, 1,000.50 -> 1000.5."""
    text = unicodedata.normalize("NFKC", text).strip()
    text = re.sub(r"[*_`]+", "", text)
    if not case_sensitive:
        text = text.casefold()
    words = [w for w in re.split(r"\s+", text.strip(" \t\n.,;:!?\"'()[]{}")) if w]
    words = [w for w in words if w.casefold() not in _ARTICLES] or words
    out = " ".join(words)
    compact = out.replace(",", "")
    if _NUMBER.fullmatch(compact):
        value = float(compact)
        return str(int(value)) if value.is_integer() else repr(value)
    return out


def choice_letter(text: str, choices: str) -> str | None:
    """The option a text picks: "Answer: B", "\\boxed{B}", "**B**", "(B)", or a bare "B." reply.

    An explicit answer marker wins; otherwise every standalone letter must agree (a text naming
    "(A)" and "(C)" picks nothing rather than the last one mentioned).
    """
    letters = re.escape(choices.upper())
    text = unicodedata.normalize("NFKC", text)
    marked = re.findall(
        rf"(?i:answer)\s*(?:is|:|=)?\s*[:\-]?\s*[\(\[*\s]*\**([{letters}])(?![\w])", text
    )
    boxed = re.findall(rf"\\boxed\{{\s*\(?([{letters}])\)?\s*\}}", text)
    if marked or boxed:
        return (boxed or marked)[-1]
    bare = re.fullmatch(rf"\s*[\(\[*]*([{letters}])[\)\]*.:]*\s*", text)
    if bare:
        return bare.group(1)
    standalone = set(
        re.findall(rf"(?:\*\*([{letters}])\*\*|\(([{letters}])\)|\[([{letters}])\])", text)
    )
    picked = {a or b or c for a, b, c in standalone}
    return picked.pop() if len(picked) == 1 else None


def _default(key: str) -> Any:
    """answer_match's schema default (a hand-built config may leave the key out)."""
    return default_of("resources_servers", "answer_match", key)


class AnswerMatch(ResourcesServer):
    """No tools; verify gives 1.0 when the final answer matches expected_answer, else 0.0."""

    async def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        if "expected_answer" not in body:
            raise ValueError(f"{self.name}: the row has no 'expected_answer' to compare with")
        expected = body["expected_answer"]
        accepted = [str(e) for e in (expected if isinstance(expected, list) else [expected])]
        text = last_text((body.get("response") or {}).get("output"), "assistant") or ""
        text = extract(text, self.config.get("answer_regex"))
        if self.config.get("mode", _default("mode")) == "multiple_choice":
            choices = self.config.get("choices", _default("choices")).upper()
            got = choice_letter(text, choices)
            wanted = {choice_letter(a, choices) or a.strip().upper()[:1] for a in accepted}
            reward = 1.0 if got is not None and got in wanted else 0.0
            return {**body, "reward": reward, "extracted_answer": got}
        case = bool(self.config.get("case_sensitive", _default("case_sensitive")))
        got_text = final_answer(text) if text else ""
        got = normalise(got_text, case_sensitive=case)
        wanted_set = {normalise(a, case_sensitive=case) for a in accepted}
        reward = (
            1.0
            if text and (got in wanted_set or normalise(text, case_sensitive=case) in wanted_set)
            else 0.0
        )
        return {**body, "reward": reward, "extracted_answer": got_text.strip() if text else None}
