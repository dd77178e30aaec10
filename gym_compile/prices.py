"""A price table (schemas/prices.json + a config's `prices:` overrides) in, a model's Price out.

Shared by gym-compile (the pre-run estimate and the budget check) and gym-run (cost per rollout),
so both sides read one table the same way. Prices are data (USD per 1M tokens), so a config can
override or extend them without a release.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gym_compile.assets import schemas_dir

_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")  # gpt-4.1-2025-04-14, gpt-4-0613


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; cached_input None means cached tokens are billed as input."""

    model: str
    input: float
    output: float
    cached_input: float | None = None
    as_of: str | None = None
    source: str | None = None


class PriceTable:
    """Model name -> Price, matching dated snapshots (gpt-4.1-2025-04-14) to their family."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.as_of: str | None = document.get("as_of")
        self.source: str | None = document.get("source")
        self._models: dict[str, Price | None] = {}
        for name, entry in (document.get("models") or {}).items():
            self._models[name.lower()] = (
                None
                if entry is None
                else Price(
                    model=name,
                    input=float(entry["input"]),
                    output=float(entry["output"]),
                    cached_input=None
                    if entry.get("cached_input") is None
                    else float(entry["cached_input"]),
                    as_of=entry.get("as_of", self.as_of),
                    source=entry.get("source", self.source),
                )
            )
        self._aliases = {k.lower(): v.lower() for k, v in (document.get("aliases") or {}).items()}

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, path: str | None = None
    ) -> PriceTable:
        """The built-in table with `overrides` (same shape) laid over it entry by entry.

        Raises ValueError naming every problem when `overrides` does not match prices.schema.json.
        """
        if problems := price_problems(overrides or {}):
            raise ValueError("price table: " + "; ".join(problems))
        with open(path or schemas_dir() / "prices.json", encoding="utf-8") as fh:
            document = json.load(fh)
        for key in ("models", "aliases"):
            document[key] = {**document.get(key, {}), **((overrides or {}).get(key) or {})}
        for key in ("as_of", "source"):
            if (overrides or {}).get(key):
                document[key] = overrides[key]  # type: ignore[index]
        return cls(document)

    def _entry(self, model: str) -> tuple[bool, Price | None]:
        """(known, price): known with price None is a model deliberately left unpriced."""
        name = model.strip().lower()
        for candidate in (name, _DATED.sub("", name)):
            candidate = self._aliases.get(candidate, candidate)
            if candidate in self._models:
                return True, self._models[candidate]
        return False, None

    def price_for(self, model: str) -> Price | None:
        return self._entry(model)[1]

    def knows(self, model: str) -> bool:
        """True also for models the table lists without a price (the stand-in)."""
        return self._entry(model)[0]


def price_problems(document: Any) -> list[str]:
    """Every way `document` breaks schemas/prices.schema.json, as `path: message` lines."""
    from gym_compile.schema_catalog import validator

    errors = sorted(
        validator("prices.schema.json").iter_errors(document), key=lambda e: list(e.absolute_path)
    )
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def unpriced_message(model: str, table: PriceTable, server: str | None = None) -> str:
    """The one wording of "this model has no price", for the compile estimate and the run summary."""
    if table.knows(model):
        return f"cost: n/a ({model} has no price)"
    where = f" for server {server!r}" if server else ""
    return (
        f"cost: n/a{where}: no price for model {model!r} "
        "(add it under prices.models in the config, USD per 1M tokens)"
    )
