"""What every request of the review app shares: the campaign, the keys
derived from the token, and the database, opened per request.

Why a connection per request, closed when the request ends: the server runs
requests on a pool of threads; a connection kept per thread was never
closed. Opening one costs about a millisecond, and a dependency with
``yield`` closes it whatever the endpoint did.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from config import Settings
from storage.db import opened

from bot.engage.review.auth import SignInThrottle, TokenKeys

# The campaign report as one self-contained HTML page: (db, settings, lang) -> html.
ReportRenderer = Callable[..., str]


@dataclass
class ReviewState:
    """The app's configuration, kept on ``app.state.review``."""

    db_path: Path
    settings: Settings
    keys: TokenKeys
    lang: str
    tz: tzinfo
    allowed_hosts: set[str] | None = None
    fail_delay_s: float = 0.5
    report: ReportRenderer | None = None
    throttle: SignInThrottle = field(default_factory=SignInThrottle)

    def open_db(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection for one unit of work (the schema was brought up to date when the app was made)."""
        return opened(self.db_path, busy_timeout_ms=self.settings.database.busy_timeout_ms, migrate=False)


def review_state(request: Request) -> ReviewState:
    return request.app.state.review


def request_db(request: Request) -> Iterator[sqlite3.Connection]:
    """The request's own connection, closed when the request is done."""
    with review_state(request).open_db() as db:
        yield db


State = Annotated[ReviewState, Depends(review_state)]
Db = Annotated[sqlite3.Connection, Depends(request_db)]
