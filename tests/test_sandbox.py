"""The sandbox platform: deterministic world, Weibo shapes, write API, fault injection."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from bot.find.errors import HttpError
from bot.find.sandbox import FaultConfig, World, start_sandbox
from bot.find.sandbox import payloads as P
from bot.find.sandbox.faults import KINDS, FaultPlan
from bot.find.sandbox.world import ME_UID, group_id
from bot.find.errors import BlockedError, PayloadError, SourceError
from bot.find.sources import open_source
from config import Settings
from config.schema import SourceSettings

SMALL = 300


def adapter(base_url: str, **kw):
    src = SourceSettings(name="sb", platform="sandbox", base_url=base_url, min_interval_s=0, jitter_s=0,
                         **{"max_retries": 0, **kw})
    return open_source(Settings(sources=[src]), src)


@pytest.fixture(scope="module")
def sandbox():
    with start_sandbox(seed=5, n_users=SMALL) as sb:
        yield sb


def test_world_is_deterministic_and_seeded():
    a, b, c = World(seed=1, n_users=SMALL, now=1.7e9), World(seed=1, n_users=SMALL, now=1.7e9), World(seed=2, n_users=SMALL, now=1.7e9)
    assert [(p.mid, p.uid, p.text) for p in a.posts.values()] == [(p.mid, p.uid, p.text) for p in b.posts.values()]
    assert [p.text for p in a.posts.values()] != [p.text for p in c.posts.values()]
    assert a.groups == c.groups                                  # super-topic ids do not depend on the seed
    assert group_id("健身") == "c91fca2fdb72155a2c9e0d60aca37fd8"


def test_world_has_the_communities_and_recent_posts():
    w = World(seed=0, n_users=SMALL, now=1.7e9)
    s = w.summary()
    assert set(s["communities"]) == {"健身", "篮球", "护肤", "母婴", "咖啡", "游戏", "旅行", "数码"}
    assert all(1.7e9 - 21 * 86400 <= p.ts <= 1.7e9 for p in w.posts.values())
    mids = w.all_desc
    assert mids == sorted(mids, key=int, reverse=True)            # newest first, ids grow with time
    followers = sorted(u.followers for u in w.users.values())
    assert followers[-1] > 20 * followers[len(followers) // 2]    # heavy tail
    assert any(p.repost_of for p in w.posts.values()) and any(p.long_extra for p in w.posts.values())
    assert any(p.deleted_original for p in w.posts.values())
    assert w.true_community(next(iter(w.users))) in s["communities"]


def test_true_community_never_appears_in_payloads():
    w = World(seed=0, n_users=SMALL, now=1.7e9)
    user = next(iter(w.users.values()))
    blob = json.dumps([P.user_json(user, full=True), P.post_card(w, w.posts[user.mids[0]])], ensure_ascii=False)
    assert "community" not in blob and "second" not in blob


def test_reads_in_weibo_shapes(sandbox):
    src = adapter(sandbox.base_url)
    page = src.topic_posts("健身打卡")
    assert len(page.posts) >= 10 and page.next_cursor == "p:2"
    assert all("健身打卡" in p.topics for p in page.posts if not p.repost_of and p.kind == "post"
               and p.pid in sandbox.world.topic_mids("健身打卡"))
    group = src.group_posts("健身超话")
    assert group.posts and all(p.group_id == group_id("健身") for p in group.posts
                                if p.pid in sandbox.world.by_group[group_id("健身")])
    users = src.users_by_tag("咖啡")
    assert users.users and all("咖啡" in u.tags or "咖啡" in (u.bio or "") for u in users.users)
    profile = src.user_profile(users.users[0].uid)
    assert profile.full_profile and profile.tags
    timeline = src.user_posts(profile.uid)
    assert [p.pid for p in timeline.posts if p.uid == profile.uid][:3] == sandbox.world.users[profile.uid].mids[:3]


def test_writes_need_a_token():
    with start_sandbox(seed=0, n_users=SMALL, token="right-token") as sb:
        pid = sb.world.all_desc[0]
        r = httpx.post(f"{sb.base_url}/2/comments/create.json", data={"id": pid, "comment": "hi"})
        assert r.status_code == 401 and r.json()["error_code"] == 21332
        r = httpx.post(f"{sb.base_url}/2/comments/create.json", data={"id": pid, "comment": "hi", "access_token": "wrong"})
        assert r.status_code == 401
        r = httpx.post(f"{sb.base_url}/2/comments/create.json", data={"id": pid, "comment": "hi", "access_token": "right-token"})
        assert r.status_code == 200
        assert len(sb.actions) == 1


def test_comment_shows_up_in_hotflow_and_is_recorded_once():
    with start_sandbox(seed=0, n_users=SMALL) as sb:
        src = adapter(sb.base_url)
        pid = sb.world.all_desc[3]
        result = src.reply(pid, "这组动作很扎实！", "queue-7")
        assert result.ok and result.remote_id
        assert src.find_own_reply(pid, "这组动作很扎实！") == result.remote_id
        assert [(a["kind"], a["target"], a["text"], a["idempotency_key"]) for a in sb.actions] == \
               [("comment", pid, "这组动作很扎实！", "queue-7")]
        listed = httpx.get(f"{sb.base_url}/_sandbox/actions").json()
        assert listed == sb.actions
        rp = src.repost(pid, "好内容", "queue-8")
        assert rp.ok and sb.actions[-1]["kind"] == "repost"
        bad = src.reply("123", "hi", "k")
        assert not bad.ok and "20101" in bad.error


def test_some_targets_reply_some_opt_out_some_follow_back():
    with start_sandbox(seed=0, n_users=SMALL) as sb:
        src = adapter(sb.base_url)
        ours = {}
        for i, pid in enumerate(sb.world.all_desc[:80]):
            # People answer a comment that speaks to their post more often than one that fits any post.
            quote = sb.world.posts[pid].text.replace("#", "")[:8]
            text = f"“{quote}”说得好 {pid[-4:]}" if i % 2 else f"你好 {pid[-4:]}"
            ours[src.reply(pid, text, pid).remote_id] = pid
        replies = src.comments_to_me()
        assert 10 <= len(replies) <= 50
        assert all(r.raw["reply_to_comment_id"] in ours and r.parent_pid == ours[r.raw["reply_to_comment_id"]]
                   for r in replies)
        texts = [r.text for r in replies]
        assert any(t in ("别再@我了", "不要打扰，谢谢", "请不要再给我发这种评论了") for t in texts)
        assert any(t not in ("别再@我了", "不要打扰，谢谢", "请不要再给我发这种评论了") for t in texts)
        newest = max(r.pid for r in replies)
        assert src.comments_to_me(since_id=newest) == []
        followers = src.follower_ids()
        assert followers and followers <= {sb.world.posts[p].uid for p in ours.values()}
        assert src.own_uid() == ME_UID
        again = {src.reply(pid, f"你好 {pid[-4:]}", pid).remote_id for pid in sb.world.all_desc[:80]}
        assert len(again) == 80                                # each write is a new action
        assert len(sb.actions) == 160


def test_fault_plan_is_deterministic_and_close_to_its_rates():
    cfg = FaultConfig.spread(0.2, seed=3)
    a, b = FaultPlan(cfg), FaultPlan(cfg)
    keys = [f"/api?page={i}" for i in range(3000)]
    ra = [a.roll(k) for k in keys]
    assert ra == [b.roll(k) for k in keys]
    rate = sum(1 for r in ra if r) / len(ra)
    assert 0.17 < rate < 0.23
    assert set(r for r in ra if r) == set(KINDS)


@pytest.mark.parametrize("kind, expect", [
    ("http_418", "http_418"), ("http_432", "http_432"), ("http_429", "http_429"), ("captcha", "captcha"),
    ("login_redirect", "login_redirect"), ("truncated", PayloadError), ("http_500", "http_500"), ("http_503", "http_503"),
])
def test_each_fault_reaches_the_adapter_as_its_signal(kind, expect):
    with start_sandbox(seed=0, n_users=SMALL, faults=FaultConfig(**{kind: 1.0}, retry_after_s=0)) as sb:
        src = adapter(sb.base_url)
        with pytest.raises(SourceError) as info:
            src.topic_posts("健身打卡")
        if isinstance(expect, str):
            assert info.value.kind == expect
            if expect.startswith("http_4") or expect in ("captcha", "login_redirect"):
                assert isinstance(info.value, BlockedError)
        else:
            assert isinstance(info.value, expect)


def test_bad_payload_fault_makes_items_malformed():
    with start_sandbox(seed=0, n_users=SMALL, faults=FaultConfig(bad_payload=1.0)) as sb:
        src = adapter(sb.base_url)
        skipped = 0
        for n in range(1, 6):
            try:
                skipped += src.topic_posts("健身打卡", f"p:{n}").skipped
            except PayloadError:
                skipped += 1
        assert skipped == 5


def test_slow_responses_time_out():
    with start_sandbox(seed=0, n_users=SMALL, faults=FaultConfig(slow=1.0, slow_s=0.6)) as sb:
        src = adapter(sb.base_url, timeout_s=0.15)
        with pytest.raises(HttpError) as info:
            src.topic_posts("健身打卡")
        assert info.value.kind == "timeout"


def test_serve_command_runs_in_the_foreground(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "bot", "sandbox", "serve", "--port", "0", "--users", "200"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "sandbox serving" in line
        base = line.strip().rsplit(" at ", 1)[1]
        deadline = time.monotonic() + 10
        while True:
            try:
                world = httpx.get(f"{base}/_sandbox/world", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert world["users"] == 200 and "健身" in world["communities"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_world_command_lists_what_queries_can_use(cli):
    code, out, err = cli("sandbox", "world", "--users", "200")
    assert code == 0, err
    assert "健身打卡" in out and "c91fca2fdb72155a2c9e0d60aca37fd8" in out and "咖啡探店" in out


def test_reads_need_no_token_and_writes_name_the_missing_one(sandbox, monkeypatch):
    from bot.find.sources.weibo import MissingTokenError

    monkeypatch.delenv("HX_TEST_NO_SUCH_TOKEN", raising=False)
    src = SourceSettings(name="w", platform="weibo", base_url=sandbox.base_url, api_base_url=sandbox.base_url,
                         token_env="HX_TEST_NO_SUCH_TOKEN", min_interval_s=0, jitter_s=0)
    source = open_source(Settings(sources=[src], origin="camp.toml"), src)
    assert source.topic_posts("健身打卡").posts
    with pytest.raises(MissingTokenError) as info:
        source.reply(sandbox.world.all_desc[0], "hi", "k")
    assert "HX_TEST_NO_SUCH_TOKEN" in str(info.value) and "camp.toml" in str(info.value)


def test_detail_page_shows_the_post_escaped(sandbox):
    mid = sandbox.world.all_desc[0]
    r = httpx.get(f"{sandbox.base_url}/detail/{mid}")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert sandbox.world.users[sandbox.world.posts[mid].uid].name in r.text
    assert httpx.get(f"{sandbox.base_url}/detail/1").status_code == 404
