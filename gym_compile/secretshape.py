"""What a secret looks like: credential shapes, secret-looking names, credential headers, and the
mask. A leaf module (no gym_compile imports), so validate, secretscan and the runtime share one
definition without an import cycle."""

from __future__ import annotations

import re
from typing import Any

# Shapes of real credentials: OpenAI (sk-, sk-proj-, sk-svcacct-; with a digit, so sk-learn-style words
# and placeholders like "sk-..." do not match), NVIDIA (nvapi-), Hugging Face, GitHub, a pasted bearer token,
# and a password in a URL (https://user:pass@proxy/v1).
_EDGE = r"(?<![A-Za-z0-9_])"
SECRET_PATTERNS = tuple(
    re.compile(_EDGE + p)
    for p in (
        r"(?P<prefix>sk-)(?=[A-Za-z_\-]*\d)[A-Za-z0-9_\-]{20,}",
        r"(?P<prefix>nvapi-)[A-Za-z0-9_\-]{20,}",
        r"(?P<prefix>hf_)[A-Za-z0-9]{30,}",
        r"(?P<prefix>ghp_|github_pat_)[A-Za-z0-9_]{30,}",
        r"(?P<prefix>Bearer\s+)[A-Za-z0-9_\-.=+/~]{16,}",
        r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)[^/\s@]{3,}(?=@)",  # a password in a URL
    )
)
# whole name segments, so policy_api_key and hf_token match but max_output_tokens and keyboard do not
SECRET_KEY = re.compile(
    r"(^|[_\-.])(key|apikey|token|secret|password|passwd)($|[_\-.])", re.IGNORECASE
)
MASK = "***"
#: Headers that carry credentials whatever their value looks like (plus any name secret_key_name
#: accepts: x-api-key, x-auth-token, ...).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "api-key"})
HEADER_FIELDS = frozenset({"default_headers", "headers"})


def find_secret(text: str) -> re.Match[str] | None:
    """The first credential-looking token in the text."""
    found = [m for p in SECRET_PATTERNS if (m := p.search(text)) is not None]
    return min(found, key=lambda m: m.start()) if found else None


def looks_secret(value: Any) -> bool:
    return isinstance(value, str) and find_secret(value) is not None


def secret_key_name(name: object) -> bool:
    """env.yaml keys like policy_api_key or hf_token hold secrets even when their value looks plain."""
    return isinstance(name, str) and SECRET_KEY.search(name) is not None


def credential_header(name: object) -> bool:
    """Authorization, api-key, x-api-key, X-Auth-Token, ...: a header whose value is a secret."""
    return isinstance(name, str) and (
        name.strip().lower() in CREDENTIAL_HEADERS or secret_key_name(name.strip())
    )


def mask_text(text: str) -> str:
    """Keeps the recognisable prefix (sk-, Bearer) so a reader knows what was there."""
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group("prefix") + MASK, text)
    return text
