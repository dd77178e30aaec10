"""The stand-in as an LLM judge: a prompt laid out like templates/judge_equivalence.j2 in, a verdict
label out. Deterministic, so judged demo runs and tests are reproducible."""

from __future__ import annotations

import re

_JUDGE_EXPECTED = re.compile(r"<expected_answer>\n(.*?)\n</expected_answer>", re.DOTALL)
_JUDGE_GENERATED = re.compile(r"<generated_answer>\n(.*)\n</generated_answer>", re.DOTALL)
_JUDGE_EQUAL = re.compile(
    r"^(.+?) if the generated answer is equivalent to the expected answer$", re.MULTILINE
)
_JUDGE_NOT_EQUAL = re.compile(r"^(.+?) if it is not$", re.MULTILINE)
_ARTICLES = {"a", "an", "the"}


def _judge_words(text: str) -> list[str]:
    """Lower-case words and numbers (1,000 -> 1000; 3.50 stays 3.50), articles dropped."""
    words = re.findall(r"\d+(?:\.\d+)?|[^\W_]+", text.lower().replace(",", ""))
    return [w for w in words if w not in _ARTICLES]


def _judge_answer(text: str) -> str | None:
    """The verdict for a prompt laid out like templates/judge_equivalence.j2, else None.

    Equal when the expected answer's words appear, in order and adjacent, among the generated
    answer's words ("Paris" in "The capital is Paris."), after lower-casing and dropping
    punctuation and articles. Deterministic, so judged demo runs and tests are reproducible.
    """
    expected, generated = _JUDGE_EXPECTED.search(text), _JUDGE_GENERATED.search(text)
    if expected is None or generated is None:
        return None
    tail = text[generated.end() :]
    equal, not_equal = _JUDGE_EQUAL.findall(tail), _JUDGE_NOT_EQUAL.findall(tail)
    if not equal or not not_equal:
        return None
    want, got = _judge_words(expected.group(1)), _judge_words(generated.group(1))
    n = len(want)
    same = any(got[i : i + n] == want for i in range(len(got) - n + 1)) if n else not got
    return equal[-1].strip() if same else not_equal[-1].strip()
