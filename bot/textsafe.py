"""Making untrusted text safe for a terminal table.

Why: post text comes from strangers. Bidi overrides (U+202E) can reverse what
follows on screen, control characters can move the cursor or change colours,
and a 100 KB post would swamp a table. rich markup is off where this is used.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def terminal_safe(text: str | None, limit: int | None = None) -> str:
    if not text:
        return ""
    clean = _CONTROL.sub("", text.replace("\n", " ").replace("\t", " "))
    clean = "".join(ch for ch in clean if unicodedata.category(ch) != "Cs")
    if limit is not None and len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    # rich treats [..] as markup only when markup is on; escape anyway for callers that forget.
    return clean.replace("[", "\\[")


# OWASP's CSV injection rule: a spreadsheet reads a cell starting with one of
# these as a formula (=HYPERLINK(...), =cmd|' /C calc'!A0, @SUM(...)).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: strings starting like a formula
    get a leading apostrophe, so the cell is shown as text (with the
    apostrophe in some programs) and never evaluated. Numbers and other
    values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
