"""The source lines a diagnostic may quote: lines of config files the loader read, nothing else.

Quoting re-read files by name once printed `/proc/self/environ` (API keys) and `/etc/shadow` when
a dataset path pointed there, 20 MB of stderr for a 20 MB line, and read a 1 GiB file whole to
show one line. Now the loader hands over the text it already read (a config file or env.yaml,
under its size limit); datasets, plans and anything else are located (file:line:col) but never
quoted. A shown line is masked by the caller and cut to a window around the caret.
"""

from __future__ import annotations

import os
from collections import OrderedDict

MAX_SHOWN = 160  # characters of a source line shown around the caret
MAX_MASKED = 64 * 1024  # a longer line is not shown: masking must see the whole line
_MAX_KEPT_BYTES = 64 * 1024 * 1024  # texts kept for excerpts, oldest dropped first
_texts: OrderedDict[str, str] = OrderedDict()
_kept = 0


def remember(path: str | os.PathLike[str], text: str) -> None:
    """The loader read this config file: its lines may be quoted (the newest text wins)."""
    global _kept
    key = os.path.abspath(os.fspath(path))
    old = _texts.pop(key, None)
    _kept += len(text) - (len(old) if old is not None else 0)
    _texts[key] = text
    while _kept > _MAX_KEPT_BYTES and len(_texts) > 1:
        _, dropped = _texts.popitem(last=False)
        _kept -= len(dropped)


def source_line(file: str, line: int) -> str | None:
    """Line `line` (1-based) of a remembered config file; None for any other file, a line that
    is not there, or one too long to mask and show."""
    text = _texts.get(os.path.abspath(file))
    if text is None or line < 1:
        return None
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    end = text.find("\n", start)
    shown = text[start : end if end >= 0 else len(text)].rstrip("\r")
    if start == 0 and shown.startswith("\ufeff"):
        shown = shown[1:]
    return shown if len(shown) <= MAX_MASKED else None


def window(text: str, col: int, width: int) -> tuple[str, int, int]:
    """(shown text, caret column, caret width): at most MAX_SHOWN characters around the caret,
    with '…' where the line was cut."""
    if len(text) <= MAX_SHOWN:
        return text, col, width
    start = max(0, min(col - 1 - MAX_SHOWN // 3, len(text) - MAX_SHOWN))
    end = start + MAX_SHOWN
    head = "…" if start > 0 else ""
    tail = "…" if end < len(text) else ""
    col = col - start + len(head)
    width = max(1, min(width, MAX_SHOWN - (col - 1 - len(head))))
    return head + text[start:end] + tail, col, width
