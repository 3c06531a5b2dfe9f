"""Replies to us are read page by page until the cursor (issue 13): more than
one page of 50 between two outcome runs must not be lost."""

from __future__ import annotations

import time

import pytest

from bot.find.sandbox import start_sandbox
from bot.find.sources import open_source
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


def test_mastodon_replies_to_us_follow_the_next_link_until_the_cursor():
    """Mentions come newest first, 40 a page; the adapter follows rel="next"
    until a page reaches back to the newest reply it had seen."""
    import copy
    import json
    from pathlib import Path

    import httpx
    import respx

    from bot.find.http import PoliteClient
    from bot.find.sources.mastodon import MastodonSource
    from config import SourceSettings

    fix = Path(__file__).parent / "fixtures" / "mastodon"
    note = json.loads((fix / "notifications.json").read_text(encoding="utf-8"))[0]   # a recorded mention

    def mention(i: int) -> dict:
        n = copy.deepcopy(note)
        n["id"] = str(900 + i)
        n["status"]["id"] = str(113500000000001000 + i)
        return n

    newest_first = [mention(i) for i in range(90, 0, -1)]           # 90 replies since the last look
    pages = [newest_first[:40], newest_first[40:80], newest_first[80:]]
    base = "https://mastodon.example"
    with respx.mock() as mock:
        mock.get(base + "/api/v1/accounts/verify_credentials").mock(return_value=httpx.Response(
            200, json=json.loads((fix / "verify_credentials.json").read_text(encoding="utf-8"))))
        mock.get(base + "/api/v1/statuses/113500000000000777").mock(return_value=httpx.Response(
            200, json=json.loads((fix / "post_status_response.json").read_text(encoding="utf-8"))))
        notes = mock.get(base + "/api/v1/notifications").mock(side_effect=[
            httpx.Response(200, json=pages[0], headers={"Link": f'<{base}/api/v1/notifications?max_id=861>; rel="next"'}),
            httpx.Response(200, json=pages[1], headers={"Link": f'<{base}/api/v1/notifications?max_id=821>; rel="next"'}),
            httpx.Response(200, json=pages[2]),
        ])
        settings = SourceSettings(name="masto", platform="mastodon", base_url=base, min_interval_s=0, jitter_s=0,
                                  max_retries=1)
        client = PoliteClient(settings, sleep=lambda seconds: None)
        src = MastodonSource(settings, client, secrets={"token": "t"})
        got = src.comments_to_me(since_id=str(113500000000001000 + 5))     # seen up to reply 5
        client.close()
        assert len(got) == 85 and notes.call_count == 3
        assert notes.calls[1].request.url.params["max_id"] == "861"


@pytest.mark.parametrize("text", ["3 < 5 > 2 加油", "&lt;b&gt; 不是标签", "a &amp; b", "ＡＢＣ１２３ 💪", "<b>"])
def test_mastodon_finds_our_reply_however_the_server_rendered_it(text):
    """Mastodon escapes our text into HTML; reconciliation still finds it (issue 13's send-once)."""
    import html
    import json
    from pathlib import Path

    import httpx
    import respx

    from bot.find.http import PoliteClient
    from bot.find.sources.mastodon import MastodonSource
    from config import SourceSettings

    fix = Path(__file__).parent / "fixtures" / "mastodon"
    me = json.loads((fix / "verify_credentials.json").read_text(encoding="utf-8"))
    base = "https://mastodon.example"
    ours = {"id": "777", "in_reply_to_id": "10", "account": {"id": me["id"]},
            "content": f'<p><span class="h-card"><a href="{base}/@x">@<span>x</span></a></span> {html.escape(text)}</p>'}
    with respx.mock() as mock:
        mock.get(base + "/api/v1/accounts/verify_credentials").mock(return_value=httpx.Response(200, json=me))
        mock.get(base + "/api/v1/statuses/10/context").mock(return_value=httpx.Response(
            200, json={"ancestors": [], "descendants": [ours]}))
        settings = SourceSettings(name="masto", platform="mastodon", base_url=base, min_interval_s=0, jitter_s=0,
                                  max_retries=1)
        client = PoliteClient(settings, sleep=lambda seconds: None)
        src = MastodonSource(settings, client, secrets={"token": "t"})
        try:
            assert src.find_own_reply("10", text) == "777"
            assert src.find_own_reply("10", "从未发过的话") is None
        finally:
            client.close()
