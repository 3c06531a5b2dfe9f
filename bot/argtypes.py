"""Number options for argparse that check their range where the value enters.

Why: an option accepted as any ``int`` or ``float`` reaches code that cannot
take it (a port of 70000, ``--users 99999999999`` generating a world without
end, ``inf`` seconds in a timedelta) and fails far from the cause. Each of
these refuses the value in one line naming the option and the allowed range
(argparse adds the option's name: ``argument --port: must be from 0 to 65535``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

MAX_ID = 2**63 - 1            # SQLite's largest integer


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """A whole number from ``lo`` to ``hi`` inclusive."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number from {lo} to {hi}, got {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {text[:40]}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float) -> Callable[[str], float]:
    """A finite number from ``lo`` to ``hi`` inclusive (never nan or inf)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number from {lo:g} to {hi:g}, got {text[:40]!r}") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be a number from {lo:g} to {hi:g}, got {text[:40]}")
        return value

    parse.__name__ = "number"
    return parse


PORT = int_range(0, 65535)
SEED = int_range(0, 2**32 - 1)          # numpy and random seeds alike
ITEM_ID = int_range(1, MAX_ID)
LIMIT = int_range(1, 1_000_000)
RATE = float_range(0.0, 1.0)
