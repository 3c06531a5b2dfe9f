"""Records that cross module boundaries: what adapters and importers produce
and what storage upserts. Plain dataclasses so nlp/ and tests can build them
without a database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class User:
    platform: str
    uid: str
    name: str | None = None
    bio: str | None = None
    tags: list[str] = field(default_factory=list)
    followers: int | None = None
    following: int | None = None
    posts_count: int | None = None
    verified: bool | None = None
    verified_reason: str | None = None
    gender: str | None = None
    location: str | None = None
    profile_url: str | None = None
    avatar_url: str | None = None
    raw: Any = None                      # the platform payload, kept as-is
    full_profile: bool = False           # True when from a profile endpoint (not just a post's author stub)
    # Details a marketer reads (migration 0090); None when the source does not say.
    verified_type: int | None = None     # Weibo: -1 none, 0 personal V, 1-7 organisation (blue V)
    ip_location: str | None = None       # IP属地
    birthday: str | None = None
    education: str | None = None
    company: str | None = None
    registered_at: str | None = None
    is_bot: bool | None = None
    counts_floor: list[str] = field(default_factory=list)   # count fields given as "N万+" (lower bounds)


@dataclass
class Post:
    platform: str
    pid: str
    uid: str
    text: str = ""
    created_at: str | None = None        # ISO 8601 with offset
    topics: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    reposts: int | None = None
    comments: int | None = None
    likes: int | None = None
    kind: str = "post"                   # post | comment
    parent_pid: str | None = None
    repost_of: str | None = None
    group_id: str | None = None
    region: str | None = None
    url: str | None = None
    raw: Any = None
    author: User | None = None           # when the payload carries the author inline
    # Threads and details (migration 0090); None when the source does not say.
    reply_to: str | None = None          # the comment this comment answers (None: answers the post itself)
    thread_root: str | None = None       # the top-level comment of its thread
    source: str | None = None            # client it was posted from
    pic_urls: list[str] | None = None    # None: unknown; []: no pictures
    video_type: str | None = None
    video_plays: int | None = None
    edit_count: int | None = None
    language: str | None = None
    counts_floor: list[str] = field(default_factory=list)   # count fields given as "N万+" (lower bounds)


@dataclass
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: "UpsertCounts") -> "UpsertCounts":
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self
