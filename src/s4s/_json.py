"""Bounded JSON parsing for the files s4s reads (solver files, checkpoint metadata, cache
manifests): a hostile or damaged file gets a ``ValueError``, never a ``RecursionError`` or an
attempt to hold gigabytes of text."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_BYTES", "MAX_DEPTH", "parse_json"]

MAX_BYTES = 16 << 20
"""Largest JSON text read (a solver file is a few kilobytes)."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted (s4s writes at most about 6)."""


def _depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str | bytes, what: str) -> Any:
    """``json.loads(text)`` within :data:`MAX_BYTES` and :data:`MAX_DEPTH`; any failure is a
    ``ValueError`` that names ``what`` (a file, or the part of one) and the reason."""
    if len(text) > MAX_BYTES:
        raise ValueError(f"{what}: larger than {MAX_BYTES >> 20} MiB of JSON")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{what}: not UTF-8 text ({e})") from None
    if _depth(text) > MAX_DEPTH:
        raise ValueError(f"{what}: JSON nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{what}: not JSON ({e}); truncated or damaged?") from None
