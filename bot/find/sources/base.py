"""The source interface every platform adapter implements.

Why one small interface: the crawler, planner and sender never know which
platform they talk to. A new platform is one new module in ``bot/find/sources/``
named after the platform (``weibo.py``, ``mastodon.py``) that defines
``SOURCE_CLASS``; the registry (``bot.find.sources``) finds it by the config's
``platform`` value. The errors adapters raise live in ``bot.find.errors``.

Every read returns a ``Page``: parsed records plus the raw payload and an
opaque cursor for the next page (None at the end). Adapters never touch the
database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from config import SourceSettings
from storage.records import Post, User
from bot.find.errors import UnsupportedError


@dataclass
class Page:
    posts: list[Post] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    next_cursor: str | None = None
    raw: Any = None
    skipped: int = 0                     # malformed items logged and skipped on this page


@dataclass
class SendResult:
    """What the platform said about a write. ``remote_id`` is the new comment/post id."""

    ok: bool
    remote_id: str | None = None
    error: str | None = None
    raw: Any = None


class Source(ABC):
    """A platform adapter. ``http`` is the polite client (``bot.find.http``).

    Besides its reads and writes an adapter declares what the rest of the bot
    needs to know about its platform, so no other module names a platform:
    the class attributes below and the two link builders.
    """

    platform: str = ""                          # the config's ``platform`` value; stored with every record
    send_mode: str | None = None                # the ``[engagement].send_mode`` that sends through it (None: no sending)
    send_token: str | None = None               # what sending needs configured (token_env/token_file), if it has no default
    source_keys: frozenset[str] = frozenset()   # the platform-only ``[[sources]]`` keys it reads (others may not set them)
    signin: str | None = None                   # ``huaxiang login NAME`` that signs it in (browser sign-in), if any
    default: bool = False                       # the platform a bare user id means (``optout add UID``)
    local: bool = False                         # a generated platform served on this machine (``huaxiang sandbox``)

    @classmethod
    def post_link(cls, pid: str, sources: list[SourceSettings]) -> str | None:
        """A link a person can open for post ``pid`` when the stored post has
        none (the review page, the worklist); ``sources`` are the configured ones."""
        return None

    @classmethod
    def profile_link(cls, uid: str) -> str | None:
        """A link to user ``uid``'s profile when the stored user has none."""
        return None

    def __init__(self, settings: SourceSettings, http: Any, secrets: dict[str, str | None] | None = None):
        self.settings = settings
        self.http = http
        self.secrets = secrets or {}

    # -- reads ---------------------------------------------------------
    @abstractmethod
    def search_posts(self, keyword: str, cursor: str | None = None) -> Page: ...

    @abstractmethod
    def topic_posts(self, topic: str, cursor: str | None = None) -> Page: ...

    @abstractmethod
    def group_posts(self, group: str, cursor: str | None = None) -> Page: ...

    def users_by_tag(self, tag: str, cursor: str | None = None) -> Page:
        raise UnsupportedError(f"{self.platform} cannot list users by tag")

    @abstractmethod
    def user_profile(self, uid: str) -> User: ...

    @abstractmethod
    def user_posts(self, uid: str, cursor: str | None = None) -> Page: ...

    def post_comments(self, pid: str, cursor: str | None = None) -> Page:
        raise UnsupportedError(f"{self.platform} cannot list comments")

    def expand_posts(self, posts: list[Post]) -> list[Post]:
        """Complete posts the listing truncated (e.g. Weibo ``isLongText``).

        The crawler calls this only for posts it has not stored yet, so a
        re-crawl of known pages costs no extra requests.
        """
        return posts

    def fetch(self, kind: str, value: str, cursor: str | None = None) -> Page:
        """Dispatch a configured query kind to the matching read."""
        if kind == "keyword":
            return self.search_posts(value, cursor)
        if kind == "topic":
            return self.topic_posts(value, cursor)
        if kind == "group":
            return self.group_posts(value, cursor)
        if kind == "tag":
            return self.users_by_tag(value, cursor)
        raise UnsupportedError(f"unknown query kind {kind!r}")

    # -- writes (only the sender calls these, only for approved items) --
    def reply(self, post_pid: str, text: str, idempotency_key: str) -> SendResult:
        raise UnsupportedError(f"{self.platform} cannot send replies")

    def repost(self, post_pid: str, text: str, idempotency_key: str) -> SendResult:
        raise UnsupportedError(f"{self.platform} cannot repost")

    def find_own_reply(self, post_pid: str, text: str) -> str | None:
        """Reconciliation: the id of our comment with this text on the post, if it exists."""
        raise UnsupportedError(f"{self.platform} cannot look up sent replies")

    # -- outcome checks (read-only; what happened after we engaged) -----
    def comments_to_me(self, since_id: str | None = None) -> list[Post]:
        """Replies to our comments, newest first. ``Post.parent_pid`` is the post
        commented on; ``Post.raw["reply_to_comment_id"]`` the comment of ours replied to."""
        raise UnsupportedError(f"{self.platform} cannot list replies to us")

    def follower_ids(self) -> set[str]:
        """Platform user ids following our account."""
        raise UnsupportedError(f"{self.platform} cannot list followers")


def text_key(text: str) -> str:
    """A text as compared after a round trip through a platform: width
    forms folded (NFKC), case and whitespace ignored. Reconciliation
    compares our own sent text with what the platform shows this way."""
    import unicodedata

    return "".join(unicodedata.normalize("NFKC", text or "").casefold().split())
