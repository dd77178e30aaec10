"""A finished rollout in, a judged one out: NeMo Gym's `equivalence_llm_judge` resources server.

The policy's final answer and the row's `expected_answer` go into a prompt (a sandboxed Jinja2
template) for a second model; its verdict label becomes the reward. A verdict that names neither
label is not guessed at: reward 0.0, `judge_unparseable: true`, counted. The judge's own tokens
are handed back apart from the policy's in `_judge_usage` ({judge server: usage}); the agent moves
them into the record's `_gym.usage_by_server`, where they are priced and shown separately.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from pathlib import Path
from typing import Any

from gym_run.defaults import default_of
from gym_run.endpoint.usage import add_usage
from gym_run.errors import PlanError
from gym_run.messages import extract, last_text, message_text
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.prompts import PromptTemplate, load_prompt_template
from gym_run.servers.builtin.resources import ResourcesServer

DEFAULT_TEMPLATE = "judge_equivalence.j2"


def parse_verdict(text: str, equal_label: str, not_equal_label: str) -> str | None:
    """The label that occurs first, ignoring a label found only inside the other ("EQUAL" in
    "NOT EQUAL"); None when neither occurs."""

    def spans(label: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(re.escape(label), text)] if label else []

    eq, ne = spans(equal_label), spans(not_equal_label)
    eq_free = [s for s in eq if not any(a <= s[0] and s[1] <= b and (a, b) != s for a, b in ne)]
    ne_free = [s for s in ne if not any(a <= s[0] and s[1] <= b and (a, b) != s for a, b in eq)]
    first_eq = min((s[0] for s in eq_free), default=None)
    first_ne = min((s[0] for s in ne_free), default=None)
    if first_eq is None and first_ne is None:
        return None
    if first_ne is None or (first_eq is not None and first_eq < first_ne):
        return equal_label
    return not_equal_label


def _default(key: str) -> Any:
    """equivalence_llm_judge's schema default (a hand-built config may leave the key out)."""
    return default_of("resources_servers", "equivalence_llm_judge", key)


class EquivalenceLLMJudge(ResourcesServer):
    """No tools; verify asks the judge model whether the answer matches `expected_answer`."""

    def __init__(self, name: str, config: dict[str, Any], judge: ModelServer) -> None:
        super().__init__(name, config)
        self.judge = judge
        self.equal_label = config.get("judge_equal_label") or _default("judge_equal_label")
        self.not_equal_label = config.get("judge_not_equal_label") or _default(
            "judge_not_equal_label"
        )
        if self.equal_label == self.not_equal_label:
            raise PlanError(
                f"server {name!r}: judge_equal_label and judge_not_equal_label are the same"
            )
        self.template: PromptTemplate = _template(name, config)
        limit = config.get("judge_endpoint_max_concurrency")
        self._slots = asyncio.Semaphore(limit) if limit else None
        self.counts: Counter[str] = Counter()

    async def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        expected = body.get("expected_answer")
        if expected is None and isinstance(body.get("metadata"), dict):
            expected = body["metadata"].get("expected_answer")
        if expected is None:
            raise ValueError(f"{self.name}: the row has no 'expected_answer' to judge against")
        expected = str(expected)
        params = body.get("responses_create_params") or {}
        question = extract(
            last_text(params.get("input"), "user") or "", self.config.get("question_extract_regex")
        )
        answer = last_text((body.get("response") or {}).get("output"), "assistant")
        result = {
            **body,
            "expected_answer": expected,
            "judge_evaluations": [],
            "judge_verdict": None,
            "judge_unparseable": False,
            "extracted_answer": None,  # what the judge was shown: the report explains a verdict with it
            "_judge_usage": {},
        }
        if not answer:  # nothing to judge: no judge call is paid for
            self.counts["no_answer"] += 1
            return {**result, "reward": 0.0}
        extracted = extract(answer, self._answer_regex(body, expected))
        evaluation, usage = await self._ask(question, expected, extracted)
        verdict = evaluation["verdict_label"]
        self.counts["unparseable" if verdict is None else verdict] += 1
        evaluations, reward = [evaluation], 1.0 if verdict == self.equal_label else 0.0
        second = self._second_pass(body, expected, verdict == self.equal_label)
        if second == "swap":  # NeMo Gym's positional-bias check: the answers change places
            again, more = await self._ask(question, extracted, expected)
            reward = 1.0 if again["verdict_label"] == self.equal_label else self._reward("swap")
            evaluations, usage = evaluations + [again], add_usage(usage, more)
        elif second == "full":  # NeMo Gym's rescue: the whole answer instead of the extract
            again, more = await self._ask(question, expected, answer)
            reward = self._reward("full") if again["verdict_label"] == self.equal_label else 0.0
            evaluations, usage = evaluations + [again], add_usage(usage, more)
        return {
            **result,
            "reward": reward,
            "extracted_answer": extracted,
            "judge_evaluations": evaluations,
            "judge_unparseable": verdict is None,
            "judge_verdict": None
            if verdict is None
            else ("equal" if verdict == self.equal_label else "not_equal"),
            "_judge_usage": {self.judge.name: usage},
        }

    def _second_pass(self, body: dict[str, Any], expected: str, equal: bool) -> str | None:
        """NeMo Gym's second judge call: a swap check after equal (check_twice_swap), a whole-answer
        rescue after not equal when a per-row regex did the extracting (check_full_generation_on_fail);
        neither when the expected answer is past extraction_length_threshold (already whole)."""
        per_row = (body.get("template_metadata") or {}).get("output_regex")
        per_row = per_row if self._per_record_regex() else None
        threshold = self.config.get("extraction_length_threshold")
        if per_row and threshold is not None and len(expected) > threshold:
            return None
        if equal:
            return "swap" if self.config.get("check_twice_swap") else None
        return "full" if per_row and self.config.get("check_full_generation_on_fail") else None

    def _per_record_regex(self) -> bool:
        return bool(self.config.get("use_per_record_regex", _default("use_per_record_regex")))

    def _reward(self, kind: str) -> float:
        """The plan states it (the schema's default is filled in at compile time)."""
        key = "reward_if_swap_fails" if kind == "swap" else "reward_if_full_generation_succeeds"
        value = self.config.get(key)
        return float(value) if isinstance(value, (int, float)) else 0.0

    def _answer_regex(self, body: dict[str, Any], expected: str) -> str | None:
        """NeMo Gym's per-row `template_metadata.output_regex` wins, unless the answer is long."""
        per_row = (body.get("template_metadata") or {}).get("output_regex")
        if per_row and self._per_record_regex():
            threshold = self.config.get("extraction_length_threshold")
            return None if threshold is not None and len(expected) > threshold else per_row
        return self.config.get("response_extract_regex")

    async def _ask(
        self, question: str, expected: str, answer: str
    ) -> tuple[dict[str, Any], dict[str, int]]:
        prompt = self.template.render(
            question=question,
            expected_answer=expected,
            generated_answer=answer,
            equal_label=self.equal_label,
            not_equal_label=self.not_equal_label,
        )
        messages = [{"role": "user", "content": prompt}]
        if self.config.get("judge_system_message"):
            messages.insert(0, {"role": "system", "content": self.config["judge_system_message"]})
        params = {**(self.config.get("judge_responses_create_params") or {}), "input": messages}
        async with self._slots if self._slots else contextlib.nullcontext():
            response = await self.judge.responses(params)
        text = "\n".join(
            message_text(o)
            for o in response.get("output") or []
            if isinstance(o, dict) and o.get("type") == "message"
        )
        verdict = parse_verdict(text, self.equal_label, self.not_equal_label)
        usage = add_usage({}, response.get("usage"))
        return {
            "responses_create_params": params,
            "response": response,
            "verdict_label": verdict,
        }, usage


def _template(name: str, config: dict[str, Any]) -> PromptTemplate:
    inline, fpath = config.get("judge_prompt_template"), config.get("judge_prompt_template_fpath")
    if inline and fpath:
        raise PlanError(
            f"server {name!r}: give judge_prompt_template or judge_prompt_template_fpath, not both"
        )
    try:
        return load_prompt_template(fpath or inline or DEFAULT_TEMPLATE, path_only=bool(fpath))
    except FileNotFoundError as exc:
        raise PlanError(
            f"server {name!r}: judge prompt template {Path(str(exc.filename)).name!r} "
            f"not found (looked in {exc.strerror})"
        ) from None
