"""A prompt template spec (inline text, a file, or a packaged template name) in, a renderer out.

Jinja2 templates render in a sandbox with StrictUndefined: a config file is code a user may have
copied from anywhere, and a misspelt variable must fail loudly before the run, not send the judge
an empty prompt. NeMo Gym's plain-text templates (`{question}` placeholders, rendered there with
str.format) are accepted as they are.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from gym_compile.assets import templates_dir
from gym_run.errors import PlanError

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_JINJA_MARKS = ("{{", "{%", "{#")


class PromptTemplate:
    """`render(**values)`: Jinja2 (sandboxed) or NeMo Gym's `{name}` placeholders."""

    def __init__(self, text: str, origin: str, names: tuple[str, ...]) -> None:
        self.origin = origin
        self.jinja = any(mark in text for mark in _JINJA_MARKS) or origin.endswith(
            (".j2", ".jinja")
        )
        self._text = text
        try:
            self._template = _ENV.from_string(text) if self.jinja else None
            self.render(**{name: name for name in names})  # fail now on unknown names or bad syntax
        except TemplateError as exc:
            raise PlanError(f"prompt template {origin}: {type(exc).__name__}: {exc}") from None

    def render(self, **values: Any) -> str:
        if self._template is not None:
            return self._template.render(**values)
        if not values:
            return self._text
        # One pass: a value that itself reads "{expected_answer}" (a model's answer can) stays text
        # instead of pulling in another value.
        names = re.compile("{(" + "|".join(re.escape(name) for name in values) + ")}")
        return names.sub(lambda m: str(values[m.group(1)]), self._text)


def load_prompt_template(
    spec: str,
    *,
    path_only: bool = False,
    names: tuple[str, ...] = (
        "question",
        "expected_answer",
        "generated_answer",
        "equal_label",
        "not_equal_label",
    ),
) -> PromptTemplate:
    """Inline when `spec` has a newline or a brace (unless path_only); else a file, looked up as
    given (relative to the working directory) and then among the packaged templates."""
    if not path_only and ("\n" in spec or "{" in spec):
        return PromptTemplate(spec, "(inline)", names)
    candidates = [Path(spec)] if os.path.isabs(spec) else [Path(spec), templates_dir() / spec]
    for path in candidates:
        if path.is_file():
            return PromptTemplate(path.read_text(encoding="utf-8"), str(path), names)
    raise FileNotFoundError(errno.ENOENT, ", ".join(str(p) for p in candidates), spec)
