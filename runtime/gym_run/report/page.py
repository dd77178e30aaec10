"""How a report page is written, for the run report and the comparison alike: rendered by a
sandboxed, autoescaped Jinja2 (rollouts hold model output, which is untrusted text), stamped with
when it was made, written atomically; and the one spelling of a duration in them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gym_compile.assets import template_env
from gym_compile.atomic import atomic_file


def write_page(template: str, out_path: str, **context: Any) -> None:
    """templates/<template> rendered with `context` (and `generated`) into out_path."""
    html = (
        template_env(html=True)
        .get_template(template)
        .render(generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), **context)
    )
    with atomic_file(out_path) as fh:
        fh.write(html)


def seconds(value: float | None) -> str:
    """'250.0 ms' under a second, '1.25 s' from one up."""
    if value is None:
        return "n/a"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
