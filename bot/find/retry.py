"""One retry policy for the find stage, shared by the HTTP client and the crawler.

Why one policy and one budget: the client retries what it can see (5xx,
429, timeouts, network errors) and the crawler what only a parsed page
shows (blocking signals, malformed pages). Each kept its own count, so a
page could cost (1 + max_retries) x (1 + page_retries) requests - 12 with
the defaults - on top of a platform already struggling. Like Scrapy's
retry middleware, retries are now decided in one place per read: the
crawler opens a ``Budget`` of ``max_retries + page_retries`` retries for
every read it makes (a listing page, its long texts, a comments page, a
profile, a timeline page) and both layers draw from it, so a read costs at
most ``1 + max_retries + page_retries`` requests (6 with the defaults)
whichever mix of faults it meets. The client alone (the sender, sign-in)
still retries up to ``max_retries`` times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from config import SourceSettings


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before a retry, and how many a read may take."""

    backoff_s: float
    max_backoff_s: float
    max_retries: int         # the client's retries of one request
    page_retries: int        # the crawler's re-fetches of one read

    @classmethod
    def of(cls, src: SourceSettings) -> "RetryPolicy":
        return cls(src.backoff_s, src.max_backoff_s, src.max_retries, src.page_retries)

    @property
    def read_retries(self) -> int:
        """Retries one crawler read may take in all, both layers together."""
        return self.max_retries + self.page_retries

    def backoff(self, attempt: int, jitter: Callable[[float], float]) -> float:
        """Exponential wait before retry ``attempt + 1``, plus up to 25% jitter, capped."""
        base = self.backoff_s * (2 ** attempt)
        return min(self.max_backoff_s, base + jitter(base * 0.25))

    def too_long(self, retry_after: float | None) -> bool:
        """The platform asked us to stay away longer than we wait in-line: pause instead."""
        return retry_after is not None and retry_after > self.max_backoff_s


class Budgets:
    """The retry budget open in each thread (a crawl fetches authors in a few)."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def open(self, retries: int) -> Iterator[None]:
        """Reads inside share ``retries`` retries; the previous budget comes back after."""
        before = getattr(self._local, "left", None)
        self._local.left = retries
        try:
            yield
        finally:
            self._local.left = before

    def take(self) -> bool:
        """May one more retry happen? (Always, when no budget is open.)"""
        left = getattr(self._local, "left", None)
        if left is None:
            return True
        if left <= 0:
            return False
        self._local.left = left - 1
        return True
