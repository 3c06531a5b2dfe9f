"""Who follows the sending account: the baseline the sender takes before its
first send, and the list outcomes compare with it to count follow-backs.

Why its own module: the sender and outcomes both need it, and outcomes reads
through the sender's platform adapter; kept here, neither imports the other
in a circle.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from bot.find.errors import SourceError, UnsupportedError
from config import Settings
from storage import engagement as store
from storage.db import transaction

log = logging.getLogger(__name__)


def followers_key(settings: Settings) -> str:
    """The ``meta`` key of the last follower list seen through the send source."""
    return f"outcomes.followers.{settings.engagement.send_source or 'default'}"


def follower_ids(platform: Any) -> set[str] | None:
    """The account's followers, or None when the platform cannot tell (an
    adapter without the capability, or a failed request: logged, not an error)."""
    fn = getattr(platform, "follower_ids", None)
    if fn is None:
        return None
    try:
        return fn()
    except UnsupportedError:
        return None
    except SourceError as exc:
        log.warning("followers: follower_ids failed: %s", exc)
        return None


def ensure_follower_baseline(db: sqlite3.Connection, settings: Settings, platform: Any) -> None:
    """Before the first send, remember who already follows us, so only later
    follows count as follow-backs."""
    key = followers_key(settings)
    if store.meta_get(db, key) is not None:
        return
    followers = follower_ids(platform)
    if followers is not None:
        with transaction(db):
            if store.meta_get(db, key) is None:
                store.meta_set(db, key, json.dumps(sorted(followers)))
