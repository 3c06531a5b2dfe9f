"""Keep secrets out of exports.

Why here as well as at the source: the queue and the audit log carry detail
JSON that senders and adapters fill in (error messages, request summaries).
Should a cookie or token ever slip into one, an export would carry it to
people outside the team. So every exported value passes through this filter:
the configured secrets themselves are replaced wherever they appear, keys that
name secrets are dropped from JSON, and the log scrubber's patterns
(access_token=..., Authorization headers, cookies) apply too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.logs import scrub

MASK = "***"
_SECRET_KEY = re.compile(r"cookie|token|secret|password|passwd|authorization|api[_-]?key|credential|session", re.I)


class Redactor:
    """Exact secret values are masked in every field; the log scrubber's
    patterns apply only to fields our own code writes (``system_keys``), so a
    stranger's post that says "cookie: ..." stays as they wrote it."""

    def __init__(self, secrets: Iterable[str] = (), system_keys: Iterable[str] = ()):
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True))
        self.system_keys = frozenset(system_keys)

    def text(self, value: str, patterns: bool = False) -> str:
        for s in self.secrets:
            if s in value:
                value = value.replace(s, MASK)
        if patterns:
            value = scrub(value)
        return value

    def value(self, value: Any, patterns: bool = False) -> Any:
        if isinstance(value, str):
            return self.text(value, patterns)
        if isinstance(value, dict):
            return {k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) else self.value(v, patterns))
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v, patterns) for v in value]
        return value

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: self.value(v, k in self.system_keys) for k, v in row.items()}
