"""The polite HTTP client every platform adapter talks through.

Why one client with the manners built in: a crawler that hammers a platform
gets its account blocked, and one that crashes on the first 503 loses a
night's crawl. Every request here waits its turn per host (a minimum
interval plus random jitter, so requests do not tick like a metronome),
times out, and is retried a bounded number of times on 5xx, 429 and
timeouts with exponential backoff that honours ``Retry-After`` (the policy
and the per-read budget it shares with the crawler: ``bot.find.retry``). Blocking
answers (418, 432, 403, login redirects) are *not* retried here: they are
returned to the adapter, which names them, and the crawler decides to pause.

Writes (``post``) are never retried once the request may have reached the
server: sending the same comment twice is worse than not knowing whether it
went out (the sender reconciles unknown outcomes instead).

Clock, sleep and randomness are injectable so tests run without waiting.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from config import SourceSettings
from bot.find.errors import HttpError, UnreachableError
from bot.find.retry import Budgets, RetryPolicy

if TYPE_CHECKING:        # httpx is imported where a client is made: settings load without it
    import httpx

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A refused connection (nothing listens, DNS fails) is not a busy platform
# asking us to slow down: it is retried briefly, then reported.
CONNECT_DELAYS = (0.5, 1.0)


def origin(url: str) -> str:
    """scheme://host:port of a URL (what a person checks is running)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class ClientStats:
    """Counters for one client; the crawler takes before/after snapshots per query."""

    requests: int = 0                    # attempts sent (each retry counts)
    bytes: int = 0                       # response body bytes received
    errors: int = 0                      # attempts that failed (transport error or HTTP status >= 400)
    faults: Counter = field(default_factory=Counter)   # fault kind -> count (http_503, timeout, captcha ...)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_fault(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.faults[kind] += n

    def snapshot(self) -> "ClientStats":
        with self._lock:
            return ClientStats(self.requests, self.bytes, self.errors, Counter(self.faults))

    def since(self, before: "ClientStats") -> "ClientStats":
        now = self.snapshot()
        faults = Counter(now.faults)
        faults.subtract(before.faults)
        return ClientStats(now.requests - before.requests, now.bytes - before.bytes,
                           now.errors - before.errors, Counter({k: v for k, v in faults.items() if v > 0}))

    def as_dict(self) -> dict[str, Any]:
        snap = self.snapshot()
        return {"requests": snap.requests, "bytes": snap.bytes, "errors": snap.errors, "faults": dict(snap.faults)}


class _HostTurn:
    """Per-host pacing: the earliest moment the next request may start."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_at: float | None = None


# Longer than any real platform asks; "inf" or a date in year 9999 would
# overflow the cool-down arithmetic.
MAX_RETRY_AFTER_S = 7 * 86400.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date),
    at most a week; None when absent or not a number or date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        seconds = when.timestamp() - (now if now is not None else time.time())
    if not math.isfinite(seconds):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def cookie_pairs(cookie: str) -> list[tuple[str, str]]:
    """``"SUB=abc; SUBP=def"`` -> [("SUB", "abc"), ("SUBP", "def")] (a pasted browser cookie)."""
    out = []
    for part in cookie.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            if k.strip():
                out.append((k.strip(), v.strip()))
    return out


class PoliteClient:
    """httpx with per-host pacing, timeouts, bounded retries and counters.

    Safe to share between threads: each host has its own pacing lock, so two
    hosts are fetched concurrently while requests to one host queue politely.
    """

    def __init__(
        self,
        settings: SourceSettings,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        cookie: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        import httpx

        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.stats = ClientStats()
        self.policy = RetryPolicy.of(settings)
        self.budgets = Budgets()         # the crawler opens one per read; retries here draw from it
        self._turns: dict[str, _HostTurn] = {}
        self._turns_lock = threading.Lock()
        base_headers = {"User-Agent": settings.user_agent, "Accept": "application/json, text/plain, */*"}
        base_headers.update(headers or {})
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s),
            follow_redirects=False,          # a redirect to a login page is a signal, not a detour
            headers=base_headers,
        )
        if cookie:
            host = urlsplit(settings.base_url).hostname or ""
            for k, v in cookie_pairs(cookie):
                self._client.cookies.set(k, v, domain=host)

    # -- pacing ----------------------------------------------------------
    def _jitter(self, upto: float) -> float:
        if upto <= 0:
            return 0.0
        with self._rng_lock:
            return self.rng.uniform(0, upto)

    def _turn(self, host: str) -> _HostTurn:
        with self._turns_lock:
            turn = self._turns.get(host)
            if turn is None:
                turn = self._turns[host] = _HostTurn()
            return turn

    def _wait_turn(self, host: str) -> None:
        """Block until this host may be asked again, then book the next slot.

        Slots are booked from the previous slot, not from "now", so a steady
        crawl achieves the configured rate instead of drifting below it.
        """
        interval = self.settings.min_interval_s
        jitter = self.settings.jitter_s
        if interval <= 0 and jitter <= 0:
            return
        turn = self._turn(host)
        with turn.lock:
            now = self.clock()
            if turn.next_at is not None and turn.next_at > now:
                self.sleep(turn.next_at - now)
                start = turn.next_at
            else:
                start = now
            turn.next_at = start + interval + self._jitter(jitter)

    def _backoff(self, attempt: int) -> float:
        return self.policy.backoff(attempt, self._jitter)

    # -- requests --------------------------------------------------------
    def get(self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET with retries on 5xx/429/timeouts. Returns the last response (any
        status); raises ``HttpError`` when no response came back at all."""
        return self._request("GET", url, params=params, headers=headers, retry=True)

    def post(self, url: str, data: dict[str, Any] | None = None, json: Any = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        """POST without retries once the request may have been delivered.

        Only a connection that never opened is retried; a timeout or 5xx is
        handed back (``HttpError`` / the response) so the caller can treat
        the outcome as unknown rather than send twice.
        """
        return self._request("POST", url, data=data, json=json, headers=headers, retry=False)

    def _request(self, method: str, url: str, retry: bool, **kw: Any) -> httpx.Response:
        import httpx

        host = urlsplit(url).netloc
        attempts = self.settings.max_retries + 1
        refused = False
        for attempt in range(attempts):
            last = attempt == attempts - 1
            if not refused:                  # nothing reached the host: no turn to wait for
                self._wait_turn(host)
            with self.stats._lock:
                self.stats.requests += 1
            try:
                resp = self._client.request(method, url, **kw)
                body = resp.content   # read fully inside the timeout
            except httpx.TimeoutException as exc:
                kind = "timeout"
                self._count_error(kind)
                if not retry or last or not self.budgets.take():
                    raise HttpError(kind, f"{method} {_safe_url(url)}: timed out after {attempt + 1} attempt(s)") from exc
                delay = self._backoff(attempt)
                log.info("%s %s: timeout, retry %d in %.1fs", method, _safe_url(url), attempt + 1, delay)
                self.sleep(delay)
                continue
            except httpx.ConnectError as exc:
                self._count_error("unreachable")
                if attempt >= len(CONNECT_DELAYS) or last or not self.budgets.take():
                    raise UnreachableError(origin(url), _reason(exc), attempt + 1) from exc
                refused = True
                self.sleep(CONNECT_DELAYS[attempt])
                continue
            except httpx.TransportError as exc:
                kind = "network"
                self._count_error(kind)
                never_sent = isinstance(exc, httpx.ConnectError)
                if (not retry and not never_sent) or last or not self.budgets.take():
                    raise HttpError(kind, f"{method} {_safe_url(url)}: {type(exc).__name__} after {attempt + 1} attempt(s)") from exc
                delay = self._backoff(attempt)
                self.sleep(delay)
                continue
            refused = False
            with self.stats._lock:
                self.stats.bytes += len(body)
            status = resp.status_code
            if status < 400:
                return resp
            self._count_error(f"http_{status}")
            if not retry or status not in RETRY_STATUSES or last:
                return resp
            wait = parse_retry_after(resp.headers.get("Retry-After"))
            if self.policy.too_long(wait) or not self.budgets.take():
                # Asked to stay away longer than we wait in-line (the crawler
                # pauses the source with this cool-down), or the read's retries are spent.
                return resp
            delay = wait if wait is not None else self._backoff(attempt)
            log.info("%s %s: HTTP %d, retry %d in %.1fs", method, _safe_url(url), status, attempt + 1, delay)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    def set_cookies(self, pairs: dict[str, str], url: str) -> None:
        """Keep these cookies for the host of ``url`` (a visitor session, say)."""
        host = urlsplit(url).hostname or ""
        for k, v in pairs.items():
            self._client.cookies.set(k, v, domain=host)

    def _count_error(self, kind: str) -> None:
        with self.stats._lock:
            self.stats.errors += 1
            self.stats.faults[kind] += 1

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "PoliteClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _reason(exc: Exception) -> str:
    """"connection refused" rather than "[Errno 111] Connection refused"."""
    text = str(exc) or type(exc).__name__
    if "]" in text and text.startswith("["):
        text = text.split("]", 1)[1].strip()
    return text[:1].lower() + text[1:] if text else type(exc).__name__


def _safe_url(url: str) -> str:
    """The URL without its query string (tokens travel there) for log lines."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
