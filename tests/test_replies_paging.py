"""Replies to us are read page by page until the cursor (issue 13): more than
one page of 50 between two outcome runs must not be lost."""

from __future__ import annotations

import time

from bot.sandbox import start_sandbox
from bot.sources.base import open_source
from config import parse_settings


def test_replies_to_us_are_read_until_the_cursor(monkeypatch):
    monkeypatch.setenv("HUAXIANG_SANDBOX_TOKEN", "t")
    with start_sandbox(seed=2, n_users=60) as sb:
        w = sb.world
        mid = next(m for m in w.all_desc if not w.posts[m].repost_of)
        uid = w.posts[mid].uid
        base = 4_990_000_000_000_000
        with w.lock:
            for i in range(130):
                w.replies_to_us.append({"id": str(base + 10 * i), "uid": uid, "text": f"谢谢{i}", "ts": time.time(),
                                        "likes": 0, "post": mid})
        s = parse_settings({"sources": [{"name": "sb", "platform": "sandbox", "base_url": sb.base_url,
                                         "token_env": "HUAXIANG_SANDBOX_TOKEN", "min_interval_s": 0, "jitter_s": 0}]})
        src = open_source(s, s.sources[0])
        got = src.comments_to_me(None)
        assert len(got) == 130 and len({p.pid for p in got}) == 130
        cursor = str(base + 10 * 19)                        # the 20th oldest was seen last time
        newer = src.comments_to_me(cursor)
        assert len(newer) == 110 and all(int(p.pid) > int(cursor) for p in newer)
        assert sb.requests.get("/2/comments/to_me.json", 0) >= 3 + 3
