"""The errors of the find stage, shared by the HTTP client and the adapters.

Why a module of their own: the polite client (``bot.find.http``) raises
``HttpError`` and the adapters raise ``BlockedError`` and friends, and the
crawler and sender catch them all as ``SourceError``. Kept here, below both,
the client never imports the adapter interface and the adapter interface
never imports the client.
"""

from __future__ import annotations


class SourceError(Exception):
    """A request failed in a way the crawler should log and count."""

    kind = "error"


class BlockedError(SourceError):
    """The platform is refusing us (418/432/403/429, captcha, login redirect).

    ``kind`` names the signal for the crawl log; ``retry_after`` is seconds
    when the platform said so.
    """

    def __init__(self, kind: str, message: str = "", retry_after: float | None = None):
        super().__init__(message or kind)
        self.kind = kind
        self.retry_after = retry_after


class SessionExpiredError(BlockedError):
    """The signed-in session a source was given no longer works (the platform
    sends us to its sign-in or visitor page). Retrying cannot help: the source
    pauses until a person signs in again (``huaxiang login``)."""

    def __init__(self, message: str):
        super().__init__("session_expired", message)


class PayloadError(SourceError):
    """A page came back but could not be understood (truncated JSON, wrong shape)."""

    kind = "bad_payload"


class UnsupportedError(SourceError):
    """This platform has no such operation (e.g. users by tag on RSS)."""

    kind = "unsupported"


class OutcomeUnknownError(SourceError):
    """A write may or may not have been applied (timeout or 5xx after sending).

    Never retried blindly: the sender reconciles first (``find_own_reply``).
    """

    kind = "unknown_outcome"


class HttpError(SourceError):
    """The request could not be completed (timeouts or network errors after all retries)."""

    def __init__(self, kind: str, message: str = ""):
        super().__init__(message or kind)
        self.kind = kind


class UnreachableError(HttpError):
    """Nothing answered at all (connection refused, unknown host): retrying politely
    for minutes cannot help, so the crawl stops and says where it tried."""

    def __init__(self, url: str, reason: str, attempts: int):
        self.url = url
        super().__init__("unreachable", f"cannot connect to {url} ({reason}) after {attempts} attempts")
