"""Known secret values in, text and JSON values with every spelling of them masked out.

Endpoints echo what they were sent: in error bodies, and in a valid 200 whose text quotes the key,
which then reached rollouts, exports, the report and serve answers. Every secret gym-run resolved
is masked in its raw, stripped, URL-quoted, JSON-escaped and base64 spellings: as a substring when
it is long enough to be unmistakable (8+ characters), as a whole token when shorter (so a 5-letter
key like EMPTY does not eat "EMPTYING"). A value under 4 characters cannot be told apart from
ordinary text; gym-run says so once at start instead of pretending to mask it.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from gym_compile.secretscan import MASK  # the one copy of the mask

SUBSTRING_LEN = 8  # from this length a value is masked wherever it appears
MIN_MASKED_LEN = 4  # shorter values cannot be masked without mangling ordinary text
_WORD = r"A-Za-z0-9_\-"


class Redactor:
    """Masks known values in text (`redactor(text)`) and in parsed JSON (`redactor.tree(value)`)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._needles: list[str] = []  # substring forms, longest first
        self._tokens: list[str] = []  # short forms, masked only as whole tokens
        self._token_re: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: Any) -> bool:
        """Learns a value; False when it is too short to be masked at all."""
        if not isinstance(value, str) or len(value.strip()) < MIN_MASKED_LEN:
            return False
        for form in spellings(value):
            if len(form) >= SUBSTRING_LEN:
                if form not in self._needles:
                    self._needles.append(form)
            elif len(form) >= MIN_MASKED_LEN and form not in self._tokens:
                self._tokens.append(form)
        self._needles.sort(key=len, reverse=True)
        self._tokens.sort(key=len, reverse=True)
        if self._tokens:
            alternatives = "|".join(map(re.escape, self._tokens))
            self._token_re = re.compile(f"(?<![{_WORD}])(?:{alternatives})(?![{_WORD}])")
        return True

    def __bool__(self) -> bool:
        return bool(self._needles or self._tokens)

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, MASK)
        if self._token_re is not None:
            text = self._token_re.sub(MASK, text)
        return text

    def found_in(self, text: str) -> bool:
        """Whether `text` holds any known spelling (a cheap test before walking a JSON value)."""
        if any(needle in text for needle in self._needles):
            return True
        return self._token_re is not None and self._token_re.search(text) is not None

    def json_line(self, line: str) -> str:
        """A JSON document's text with known values masked, still valid JSON: only spellings that
        can stand inside a JSON string are replaced (the JSON-escaped form covers the rest)."""
        for needle in self._needles:
            if needle in line and _json_safe(needle):
                line = line.replace(needle, MASK)
        if self._token_re is not None:
            line = self._token_re.sub(
                lambda m: MASK if _json_safe(m.group(0)) else m.group(0), line
            )
        return line

    def tree(self, value: Any) -> Any:
        """A parsed JSON value with every string (keys too) masked; the same object when nothing
        needed masking. Depth is bounded by whoever parsed it (gym_compile.jsonsafe)."""
        if not self:
            return value
        if isinstance(value, str):
            return self(value) if self.found_in(value) else value
        if isinstance(value, list):
            items = [self.tree(v) for v in value]
            return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        if isinstance(value, dict):
            pairs = [(self.tree(k), self.tree(v)) for k, v in value.items()]
            changed = any(
                k2 is not k or v2 is not v
                for (k2, v2), (k, v) in zip(pairs, value.items(), strict=True)
            )
            return dict(pairs) if changed else value
        return value


def _json_safe(text: str) -> bool:
    return not any(c in text for c in '"\\') and all(ord(c) >= 0x20 for c in text)


def spellings(value: str) -> list[str]:
    """How a value may come back: as is, stripped, URL-quoted, JSON-escaped (also with \\u
    escapes), base64-encoded alone or as a Bearer header (the aligned prefix every such encoding
    starts with; only for values long enough that the prefix is not a fragment)."""
    forms = {
        value,
        value.strip(),
        urllib.parse.quote(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=True)[1:-1],
    }
    if len(value.strip()) >= SUBSTRING_LEN:
        for text in (value, f"Bearer {value}"):
            raw = text.encode()
            whole = raw[: len(raw) - len(raw) % 3]
            forms.add(base64.b64encode(whole).decode())
            forms.add(base64.urlsafe_b64encode(whole).decode())
    return sorted(f for f in forms if len(f) >= MIN_MASKED_LEN)


#: Every secret value this process resolved; runtime code masks with it before printing or
#: recording text that came from outside (upstream bodies, exception messages, records).
REDACT = Redactor()
