"""The crawler's side of the retry policy: retry a read within its budget, pause a source that keeps refusing.

Why pause instead of retry: a platform that answers 418/432/403, a captcha
or a login redirect is telling us to stop. A read is tried again a few
times (exponential backoff with jitter, honouring Retry-After), each retry
drawn from the read's one budget shared with the HTTP client
(``bot.find.retry``); when blocking persists the whole source is paused
with a growing cool-down recorded in ``sources``, and other sources carry on.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from config.schema import SourceSettings
from storage import crawl as store
from bot.find.errors import BlockedError, SessionExpiredError, SourceError, UnreachableError, UnsupportedError
from bot.find.retry import RetryPolicy
from bot.find.sources.base import Source

log = logging.getLogger(__name__)

T = TypeVar("T")


class Interrupted(Exception):
    """``stop`` was set: the current step ends, what is committed stays."""


class SourceBlocked(Exception):
    """Blocking persisted (or cannot be waited out): the source is to be paused."""

    def __init__(self, error: BlockedError):
        super().__init__(str(error))
        self.error = error


class Attempts:
    """Bounded retries of one source's reads, and its pause when they cannot help."""

    def __init__(self, src: SourceSettings, source: Source, stop: threading.Event | None, rng: random.Random):
        self.src = src
        self.source = source
        self.stop = stop
        self.rng = rng
        self.policy = RetryPolicy.of(src)

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.stop is not None:
            if self.stop.wait(seconds):
                raise Interrupted()
        else:
            getattr(self.source.http, "sleep", time.sleep)(seconds)

    def _backoff(self, attempt: int) -> float:
        return self.policy.backoff(attempt, lambda upto: self.rng.uniform(0, upto))

    def run(self, what: str, fn: Callable[[], T], accept: Callable[[T], bool] | None = None) -> T:
        """Call ``fn`` with bounded retries: backoff on errors, pause on persistent blocking.

        ``accept`` may reject a result (e.g. a page with malformed items) to get
        one more try; the last result is kept when tries run out. All retries,
        here and in the HTTP client under ``fn``, come from one budget.
        """
        with self.source.http.budgets.open(self.policy.read_retries):
            return self._run(what, fn, accept)

    def _run(self, what: str, fn: Callable[[], T], accept: Callable[[T], bool] | None) -> T:
        budgets = self.source.http.budgets
        tries = self.policy.page_retries
        for attempt in range(tries + 1):
            if self.stopped():
                raise Interrupted()
            last = attempt == tries
            try:
                result = fn()
            except (UnsupportedError, UnreachableError):
                raise
            except BlockedError as exc:
                log.warning("%s: blocked by the platform (%s): %s", what, exc.kind, exc)
                if last or self.policy.too_long(exc.retry_after) or isinstance(exc, SessionExpiredError) \
                        or not budgets.take():
                    raise SourceBlocked(exc) from None
                self.sleep(exc.retry_after if exc.retry_after is not None else self._backoff(attempt))
                continue
            except SourceError as exc:
                log.warning("%s: %s (%s)", what, exc, getattr(exc, "kind", "error"))
                if last or not budgets.take():
                    raise
                self.sleep(self._backoff(attempt))
                continue
            if accept is None or accept(result) or last or not budgets.take():
                return result
            log.info("%s: malformed items on the page, fetching it again", what)
            self.sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def pause(self, db: sqlite3.Connection, error: BlockedError) -> str:
        """Pause the source (an expired session until someone signs in again:
        ``huaxiang login`` lifts it); the line for the run's error."""
        floor = self.src.max_cooldown_s if isinstance(error, SessionExpiredError) else error.retry_after
        until = store.pause_source(db, self.src.name, f"{error.kind}: {error}", self.src.block_cooldown_s,
                                   self.src.max_cooldown_s, floor)
        log.warning("source %s paused until %s: %s persisted after %d retries", self.src.name, until, error.kind,
                    self.src.page_retries)
        return f"{error.kind}: {error} - source paused until {until}"
