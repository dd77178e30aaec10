"""NeMo Gym's named top-level blocks: a server names one by a string field and reads it from NeMo
Gym's global config at run time. NeMo Gym 0.7's sandbox providers are such blocks: a server's
`sandbox_provider: sandbox` names the top-level `sandbox: {docker: {...}}` that a provider config
(`nemo_gym/sandbox/providers/<provider>/configs/<provider>.yaml`) adds.

They are not server instances and not settings, so without this the compiler would call them
unused (GYM038) and leave them out of the plan, and the server would not find its provider.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gym_compile.secretshape import looks_secret, secret_key_name

#: Fields of a server's config whose string value names a top-level block.
NAMING_FIELDS = ("sandbox_provider",)


def named_blocks(configs: Iterable[Any]) -> set[str]:
    """The top-level names the given server configs name (at any depth) by a naming field."""
    return {name for config in configs for name in _names(config)}


def _names(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in NAMING_FIELDS and isinstance(item, str) and item and "${" not in item:
                yield item
            else:
                yield from _names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _names(item)


def secret_leaf(value: Any, path: tuple[Any, ...] = ()) -> str | None:
    """The dotted path of the first secret in a block (a secret-named key, a secret-looking
    value), or None: gym-run passes no secret through NeMo Gym's global config."""
    if isinstance(value, dict):
        for key, item in value.items():
            if secret_key_name(key) and item not in (None, "", {}):
                return ".".join(str(p) for p in (*path, key))
            found = secret_leaf(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = secret_leaf(item, (*path, index))
            if found is not None:
                return found
    elif looks_secret(value):
        return ".".join(str(p) for p in path)
    return None
