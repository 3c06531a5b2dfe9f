"""Shared builders for the engagement tests: a small generated world of
audiences, members and recent posts, settings with templates, and a fake
platform that records what it received (and can time out or crash)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone

from config import parse_settings
from storage.db import transaction
from storage.posts import upsert_posts
from storage.records import Post, User

from bot.find.errors import OutcomeUnknownError
from bot.find.sources.base import SendResult

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc)      # 12:00 in Asia/Shanghai

TEMPLATES = [
    {"name": "tips", "audience": "*", "kind": "reply",
     "variants": ["{nickname} 说得好！关于{topic}我们整理了一份入门清单，欢迎交流",
                  "同感！{topic}真的需要坚持，{nickname} 加油",
                  "学到了，{keyword}这个角度很少有人讲"]},
    {"name": "share", "audience": "健身达人", "kind": "repost", "variants": ["值得一看：{topic}经验分享"]},
]


def engagement_settings(drafting: dict | None = None, **overrides):
    eng = {"quiet_hours": "", "min_spacing_s": 0, "spacing_jitter_s": 0, "templates": TEMPLATES,
           "daily_cap": 1000, "hourly_cap": 1000, "follow_suggestions": False}
    eng.update(overrides)
    return parse_settings({"engagement": eng, "drafting": drafting or {}})


def build_world(db, users: int = 6, posts_per_user: int = 2, now: datetime = NOW, texts: dict | None = None) -> dict:
    """Two audiences; user i is in audience 1 (even) or 2 (odd), tiers rotate."""
    tiers = itertools.cycle(["leader", "engaged", "potential"])
    posts = []
    for i in range(users):
        uid = f"u{i}"
        author = User(platform="weibo", uid=uid, name=f"用户{i}", followers=100 * (i + 1), full_profile=True)
        for j in range(posts_per_user):
            pid = f"p{i}_{j}"
            text = (texts or {}).get(pid, f"今天练了腿 #健身# 第{i}{j}次打卡")
            posts.append(Post(platform="weibo", pid=pid, uid=uid, text=text, topics=["健身"],
                              created_at=(now - timedelta(hours=3 + i + 5 * j)).isoformat(),
                              likes=10 * i, comments=j, reposts=0, author=author))
    with transaction(db):
        upsert_posts(db, posts)
        db.execute("INSERT INTO audiences (id, auto_name, name, keywords, created_at) VALUES (1, 'a1', '健身达人', ?, ?)",
                        (json.dumps(["健身", "增肌"], ensure_ascii=False), now.isoformat()))
        db.execute("INSERT INTO audiences (id, auto_name, name, keywords, created_at) VALUES (2, 'a2', '新手妈妈', ?, ?)",
                        (json.dumps(["辅食"], ensure_ascii=False), now.isoformat()))
        for i in range(users):
            user_id = db.execute("SELECT id FROM users WHERE uid = ?", (f"u{i}",)).fetchone()[0]
            db.execute("INSERT INTO memberships (user_id, audience_id, score, tier) VALUES (?, ?, ?, ?)",
                            (user_id, 1 if i % 2 == 0 else 2, 0.5 + i / (2 * users), next(tiers)))
    return {"users": [f"u{i}" for i in range(users)]}


class FakePlatform:
    """Records every write; ``fail_next`` makes the next write time out after
    (or before) reaching the platform, or crash the sender."""

    platform = "weibo"

    def __init__(self):
        self.comments: list[dict] = []       # what really reached the platform
        self.calls = 0
        self.mode: str | None = None         # None | 'timeout_applied' | 'timeout_lost' | 'refuse' | 'crash'
        self.ids = itertools.count(1000)

    def _write(self, kind, post_pid, text, key):
        self.calls += 1
        mode, self.mode = self.mode, None
        if mode == "refuse":
            return SendResult(ok=False, error="HTTP 400 20019 repeated content")
        if mode == "timeout_lost":
            raise OutcomeUnknownError("timed out before the platform got it")
        rid = str(next(self.ids))
        self.comments.append({"id": rid, "kind": kind, "pid": post_pid, "text": text, "key": key})
        if mode == "timeout_applied":
            raise OutcomeUnknownError("timed out after the platform applied it")
        if mode == "crash":
            raise SimulatedCrash()
        return SendResult(ok=True, remote_id=rid)

    def reply(self, post_pid, text, idempotency_key):
        return self._write("reply", post_pid, text, idempotency_key)

    def repost(self, post_pid, text, idempotency_key):
        return self._write("repost", post_pid, text, idempotency_key)

    def find_own_reply(self, post_pid, text):
        for c in self.comments:
            if c["pid"] == post_pid and c["text"] == text and c["kind"] == "reply":
                return c["id"]
        return None

    def sends_per_key(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.comments:
            out[c["key"]] = out.get(c["key"], 0) + 1
        return out


class SimulatedCrash(BaseException):
    """Stands in for kill -9 mid-request: nothing after the request runs."""
