"""Outcomes: replies and opt-outs found in stored comments, learning per variant."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import timedelta

import pytest

from conftest import approver
from bot.engage import outcomes, queue_ops
from bot.engage.drafts import Draft, rank_drafts
from bot.engage.followers import ensure_follower_baseline
from bot.engage.planner import run_plan
from bot.engage.sender import run_send
from storage import engagement as store
from storage.db import transaction
from storage.posts import upsert_posts
from storage.records import Post
from test_queue_world import NOW, TEMPLATES, FakePlatform, build_world, engagement_settings


OPT_OUTS = ["别再@我了", "不要打扰，谢谢", "请不要再给我发这种评论了", "取关了", "别艾特我", "取关你", "拉黑了", "滚",
            "滚开", "别再评论我了", "不要再给我发", "别回复我", "举报你了", "stop messaging me", "你们再这样我就拉黑",
            "已拉黑", "别烦我", "请勿打扰", "不要再来评论", "别@我"]
# Friendly replies that carry an opt-out word without the intent (issue 13's four, and more).
FRIENDLY = ["我家猫圆滚滚的", "不要发愁，慢慢来", "别发呆了快去练", "练完滚去睡觉了哈哈", "别忘了拉伸", "不要放弃！",
            "别客气", "谢谢，不用了哈哈", "滚雪球一样进步", "拉黑那个骗子了吗，你们也小心", "谢谢分享！", "说得对",
            "我也在练", "", "哈哈谢谢", "有机会一起交流", "别担心，慢慢来", "不要太累了", "别急，坚持就好", "回头试试",
            "别回头看，往前冲", "不要再熬夜了", "别再吃夜宵了哈哈", "这个博主我关注了", "我回复晚了不好意思",
            "我举报了那个骗子账号", "取关键的一步是坚持", "拉黑名单里没有你放心", "发了一条新动态", "别再发呆啦"]


@pytest.mark.parametrize("text", OPT_OUTS)
def test_opt_out_phrases(text):
    assert outcomes.is_opt_out(text)


@pytest.mark.parametrize("text", FRIENDLY)
def test_ordinary_replies_are_not_opt_outs(text):
    assert outcomes.is_opt_out(text) is None


def _sent_world(db, users=3):
    build_world(db, users=users, posts_per_user=2)
    s = engagement_settings(templates=[TEMPLATES[0]])
    run_plan(db, s, NOW)
    ids = [r["id"] for r in store.list_items(db)]
    queue_ops.approve(db, ids, approver(db))
    run_send(db, s, NOW + timedelta(minutes=5), platform=FakePlatform(), dry_run=False)
    return s, [store.get_item(db, i) for i in ids]


def test_stored_comments_become_replies_and_opt_outs(db):
    s, items = _sent_world(db)
    a, b = items[0], items[1]
    # the crawler stored two comments under the posts we replied to
    with transaction(db):
        upsert_posts(db, [
            Post(platform="weibo", pid="c1", uid=a.target_uid, kind="comment", parent_pid=a.post_pid, text="谢谢！一起加油",
                 created_at=(NOW + timedelta(hours=1)).isoformat()),
            Post(platform="weibo", pid="c2", uid=b.target_uid, kind="comment", parent_pid=b.post_pid, text="别再@我了",
                 created_at=(NOW + timedelta(hours=1)).isoformat()),
            Post(platform="weibo", pid="c3", uid="stranger", kind="comment", parent_pid=a.post_pid, text="路过",
                 created_at=(NOW + timedelta(hours=1)).isoformat()),
        ])
    # an open item for b that must be cancelled by the opt-out
    with transaction(db):
        store.insert_item(db, {"kind": "reply", "status": "pending", "platform": "weibo", "target_uid": b.target_uid,
                               "text": "再来一条", "created_at": NOW.isoformat(), "dedupe_key": "extra"})
    summary = outcomes.collect_outcomes(db, s, now=NOW + timedelta(hours=2))
    assert (summary.replies, summary.optouts, summary.cancelled) == (1, 1, 1)
    assert [o["kind"] for o in store.outcomes_for(db, a.id)] == ["reply"]
    assert [o["kind"] for o in store.outcomes_for(db, b.id)] == ["optout"]
    (row,) = store.list_optouts(db)
    assert (row["uid"], row["evidence"], row["evidence_id"], row["origin"]) == (b.target_uid, "别再@我了", "c2", "reply")
    assert outcomes.collect_outcomes(db, s, now=NOW + timedelta(hours=3)).replies == 0      # idempotent
    # the next plan never proposes b again
    assert b.target_uid not in {r["target_uid"] for r in store.list_items(db, status="pending")}


def test_thompson_sampling_prefers_the_variant_people_answer():
    options = [Draft("t", 0, "reply", "a"), Draft("t", 1, "reply", "b")]
    stats = {(1, "t", 0): (40, 2), (1, "t", 1): (40, 20)}
    rng = random.Random(0)
    firsts = Counter(rank_drafts(options, stats, 1, rng)[0].variant for _ in range(500))
    assert firsts[1] > 450
    # with nothing learned both get tried
    fresh = Counter(rank_drafts(options, {}, 1, rng)[0].variant for _ in range(500))
    assert min(fresh.values()) > 150


def test_response_rates_per_audience_and_variant(db):
    s, items = _sent_world(db)
    with transaction(db):
        store.add_outcome(db, items[0].id, "reply", "c1", items[0].target_uid, "好", NOW.isoformat())
        store.add_outcome(db, items[0].id, "like", "", None, "3 likes", NOW.isoformat())
        store.add_outcome(db, items[1].id, "optout", "c2", items[1].target_uid, "取关", NOW.isoformat())
    rates = store.response_rates(db)
    assert sum(r["sent"] for r in rates) == len(items)
    assert sum(r["responded"] for r in rates) == 1 and sum(r["optouts"] for r in rates) == 1
    row = [r for r in rates if r["replies"]][0]
    assert row["likes"] == 1 and row["rate"] == round(row["responded"] / row["sent"], 4)
    assert set(rates[0]) >= {"audience", "template", "variant", "kind", "sent", "responded", "rate"}


def test_cli_outcomes_from_stored_comments(cli, tmp_path):
    from storage.db import connect

    db = connect(tmp_path / "o.db")
    s, items = _sent_world(db, users=1)
    with transaction(db):
        upsert_posts(db, [Post(platform="weibo", pid="c9", uid=items[0].target_uid, kind="comment",
                               parent_pid=items[0].post_pid, text="不要打扰", created_at=NOW.isoformat())])
    db.close()
    code, out, err = cli("--db", "o.db", "outcomes", "--json")
    assert code == 0, err
    assert json.loads(out)["optouts"] == 1


def test_likes_and_follow_backs_through_the_platform(db):
    from bot.find.sources.base import Page

    s, items = _sent_world(db, users=2)
    a, b = items

    class Platform:
        def __init__(self):
            self.followers = {"old-fan"}

        def comments_to_me(self, since_id=None):
            return []

        def post_comments(self, pid, cursor=None):
            return Page(posts=[Post(platform="weibo", pid=a.remote_id, uid="me", kind="comment", likes=3)]
                        if pid == a.post_pid else [])

        def follower_ids(self):
            return set(self.followers)

    p = Platform()
    ensure_follower_baseline(db, s, p)          # the sender does this before its first send
    p.followers |= {b.target_uid}
    summary = outcomes.collect_outcomes(db, s, platform=p, now=NOW + timedelta(hours=2))
    assert (summary.likes, summary.follow_backs) == (1, 1)
    assert [o["kind"] for o in store.outcomes_for(db, a.id)] == ["like"]
    assert [o["kind"] for o in store.outcomes_for(db, b.id)] == ["follow_back"]
    again = outcomes.collect_outcomes(db, s, platform=p, now=NOW + timedelta(hours=3))
    assert (again.likes, again.follow_backs) == (0, 0)
