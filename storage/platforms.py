"""SQL for the extra platforms: feed validators and the #nobot opt-out.

Why here and not in the adapters: adapters never touch the database. The
crawler hands a source's saved validators to the RSS adapter before a run
(``load_feed_state``) and saves what it learned after (``save_feed_state``).
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlite3

from config.times import utcnow

Validators = dict[str, tuple[str | None, str | None]]   # url -> (etag, last_modified)


def load_feed_state(db: sqlite3.Connection, source: str) -> Validators:
    """The ETag / Last-Modified validators last seen for each feed of a source."""
    rows = db.execute("SELECT url, etag, last_modified FROM feed_state WHERE source = ?", (source,))
    return {url: (etag, modified) for url, etag, modified in rows}


def save_feed_state(db: sqlite3.Connection, source: str, validators: Mapping[str, tuple[str | None, str | None]],
                    changed: set[str] | frozenset[str] = frozenset(), now: str | None = None) -> None:
    """Store validators (insert or replace); ``changed`` names feeds that had new content."""
    now = now or utcnow()
    for url, (etag, modified) in validators.items():
        db.execute(
            "INSERT INTO feed_state (source, url, etag, last_modified, checked_at, changed_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (source, url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,"
            " checked_at = excluded.checked_at, changed_at = COALESCE(excluded.changed_at, feed_state.changed_at)",
            (source, url, etag, modified, now, now if url in changed else None),
        )


def nobot_user_ids(db: sqlite3.Connection, platform: str | None = None) -> set[int]:
    """Row ids of users who opted out with #nobot (for planners that filter in Python)."""
    if platform is None:
        rows = db.execute("SELECT id FROM users WHERE nobot = 1")
    else:
        rows = db.execute("SELECT id FROM users WHERE nobot = 1 AND platform = ?", (platform,))
    return {r[0] for r in rows}


def is_nobot(db: sqlite3.Connection, platform: str, uid: str) -> bool:
    """True when this platform user wrote #nobot in their bio."""
    row = db.execute("SELECT nobot FROM users WHERE platform = ? AND uid = ?", (platform, uid)).fetchone()
    return bool(row and row[0])
