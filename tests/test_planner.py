"""Planning: the right people, the right time, never the wrong ones, and idempotent."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import timedelta

from config.times import parse_stored, to_stored
from bot.engage import drafts, policy, queue_ops
from bot.engage.planner import active_hours, run_plan
from storage import engagement as store
from storage.db import transaction
from test_queue_world import NOW, build_world, engagement_settings


def items(db, **kw):
    return store.list_items(db, **kw)


def test_plan_creates_pending_items_with_reason_score_and_schedule(db):
    build_world(db)
    s = engagement_settings()
    summary = run_plan(db, s, NOW, rng=random.Random(1))
    counts = summary.as_counts()
    assert counts["planned"] == 6 and counts["candidates"] == 12
    rows = items(db)
    assert {r["status"] for r in rows} == {"pending"}
    assert len({r["target_uid"] for r in rows}) == 6          # one touch per user (cap 1 per 7 days)
    for r in rows:
        assert r["score"] > 0 and r["explanation"].startswith("Score ")
        assert r["audience"] in ("健身达人", "新手妈妈") and r["tier"] in ("leader", "engaged", "potential")
        assert len(r["text"]) <= 140 and "{" not in r["text"]
        assert r["scheduled_at"] >= to_stored(NOW)
    audit = store.audit_for(db)
    assert len(audit) == 6 and {a["actor"] for a in audit} == {queue_ops.PLANNER}


def test_replanning_is_idempotent(db):
    build_world(db)
    s = engagement_settings(follow_suggestions=True)
    first = run_plan(db, s, NOW, rng=random.Random(1))
    before = store.queue_counts(db)
    second = run_plan(db, s, NOW + timedelta(minutes=30), rng=random.Random(2))
    third = run_plan(db, s, NOW + timedelta(hours=1), rng=random.Random(3))
    assert first.created > 0 and second.created == 0 and third.created == 0
    assert store.queue_counts(db) == before
    keys = [r[0] for r in db.execute("SELECT dedupe_key FROM queue")]
    assert len(keys) == len(set(keys))


def test_rejected_posts_are_not_proposed_again(db):
    build_world(db, users=2, posts_per_user=1)
    s = engagement_settings()
    run_plan(db, s, NOW)
    ids = [r["id"] for r in items(db)]
    queue_ops.reject(db, ids, "alice", "not our tone")
    assert run_plan(db, s, NOW + timedelta(days=8)).created == 0


def test_never_blocklisted_opted_out_or_deny_keyword(db):
    build_world(db, texts={"p0_0": "转发抽奖送福利", "p0_1": "抽奖啦"})
    with transaction(db):
        store.add_optout(db, "weibo", "u1", "reply", "别再@我", "c9", "huaxiang/outcomes", to_stored(NOW))
        store.add_block(db, "weibo", "u2", "competitor", "alice", to_stored(NOW))
    s = engagement_settings(deny_keywords=["抽奖"], blocklist=["u3"])
    summary = run_plan(db, s, NOW)
    targets = {r["target_uid"] for r in items(db)}
    assert targets == {"u4", "u5"}
    sk = summary.skipped
    assert sk["opt_out"] == 2 and sk["blocklist"] == 4 and sk["deny_keyword"] == 2


def test_old_posts_and_inactive_audiences_are_ignored(db):
    build_world(db, users=2, posts_per_user=1)
    s = engagement_settings(max_post_age_days=1)
    assert run_plan(db, s, NOW + timedelta(days=2)).candidates == 0
    with transaction(db):
        db.execute("UPDATE audiences SET status = 'retired'")
    assert run_plan(db, s, NOW).candidates == 0


def test_target_audiences_and_tiers(db):
    build_world(db)
    s = engagement_settings(target_audiences=["新手妈妈"], target_tiers=["leader"])
    run_plan(db, s, NOW)
    rows = items(db)
    assert rows and {r["audience"] for r in rows} == {"新手妈妈"} and {r["tier"] for r in rows} == {"leader"}


def test_text_rotates_never_identical_within_window(db):
    build_world(db, users=6, posts_per_user=1)
    tmpl = [{"name": "one", "audience": "*", "kind": "reply", "variants": ["谢谢分享，很有帮助", "说得好，收藏了"]}]
    s = engagement_settings(templates=tmpl, drafting={"builtin": False})
    summary = run_plan(db, s, NOW)
    texts = [r["text"] for r in items(db)]
    assert len(texts) == 2 and len(set(texts)) == 2          # only two distinct texts exist
    assert summary.skipped["identical_text"] == 4


def test_schedule_respects_quiet_hours_spacing_and_daily_cap(db):
    build_world(db, users=6, posts_per_user=1)
    s = engagement_settings(quiet_hours="13:00-23:59", min_spacing_s=600, spacing_jitter_s=60, daily_cap=2,
                            max_post_age_days=7)
    run_plan(db, s, NOW)       # 12:00 local: one hour before quiet hours
    rows = sorted(items(db), key=lambda r: r["scheduled_at"])
    assert len(rows) == 6
    times = [parse_stored(r["scheduled_at"]) for r in rows]
    for t in times:
        assert not policy.in_quiet_hours(s, t)
    for a, b in zip(times, times[1:]):
        assert (b - a).total_seconds() >= 600
    per_day = Counter(t.astimezone(policy.local_zone(s)).date() for t in times)
    assert max(per_day.values()) <= 2


def test_scheduled_in_active_hours_when_known(db):
    build_world(db, users=1, posts_per_user=4)
    # all four posts of u0 were made around 20:00 local
    with transaction(db):
        for j, pid in enumerate(["p0_0", "p0_1", "p0_2", "p0_3"]):
            t = (NOW - timedelta(days=j)).replace(hour=12, minute=5)      # 20:05 Asia/Shanghai
            db.execute("UPDATE posts SET created_at = ? WHERE pid = ?", (t.isoformat(), pid))
    s = engagement_settings()
    assert active_hours(s, store.user_post_times(db, 1)) == [20]
    run_plan(db, s, NOW)
    (row,) = [r for r in items(db) if r["kind"] != "follow"]
    local = parse_stored(row["scheduled_at"]).astimezone(policy.local_zone(s))
    assert local.hour == 20 and "usual active hours" in row["explanation"]


def test_follow_is_only_a_suggestion(db):
    build_world(db)
    s = engagement_settings(follow_suggestions=True)
    run_plan(db, s, NOW)
    follows = items(db, kind="follow")
    assert follows and {r["tier"] for r in follows} == {"leader"}
    assert all(r["text"] == "" and "never sent" in r["explanation"] for r in follows)


def test_drafts_fill_placeholders_and_respect_length():
    s = engagement_settings(max_length=20)
    ctx = drafts.context_for("练腿日 增肌", '["健身"]', "小王@#\u202e", "健身达人", '["增肌", "减脂"]')
    assert ctx.nickname == "小王" and ctx.topic == "健身" and ctx.keyword == "增肌"
    t = s.engagement.templates
    out = drafts.drafts_for(s, t, ctx)
    assert all(len(d.text) <= 20 for d in out)
    assert drafts.render("{nickname}你好 {other}", ctx) == "小王你好 {other}"
    # a variant whose placeholder has no value is dropped rather than sent half-filled
    assert drafts.drafts_for(s, t, drafts.DraftContext(nickname="a")) == []


def test_uses_the_analysis_figures_when_present(db):
    build_world(db, users=2, posts_per_user=1)
    with transaction(db):
        db.execute("UPDATE audiences SET target = '健身'")
        hist = [0] * 24
        hist[21] = 9
        db.execute("INSERT INTO user_stats (user_id, influence, relevance, active_hours) VALUES (1, 0.9, 0.2, ?)",
                        (json.dumps(hist),))
        db.execute("INSERT INTO user_relevance (user_id, target, score, explanation) VALUES (1, '健身', 0.95, '健身×4 in 4/9 posts')")
    s = engagement_settings()
    run_plan(db, s, NOW)
    row = [r for r in items(db) if r["target_uid"] == "u0"][0]
    assert "relevance 0.95: 健身×4 in 4/9 posts" in row["explanation"]
    local = parse_stored(row["scheduled_at"]).astimezone(policy.local_zone(s))
    assert local.hour == 21


def test_plan_tops_the_review_queue_up_to_its_budget(db):
    build_world(db, users=6, posts_per_user=1)
    s = engagement_settings(max_items_per_plan=3, follow_suggestions=True)
    assert run_plan(db, s, NOW).created == 3
    assert sum(store.queue_counts(db).values()) == 3
    again = run_plan(db, s, NOW)                         # nothing reviewed, nothing new: nothing added
    assert again.created == 0 and again.queue_full and store.queue_counts(db)["pending"] == 3
    queue_ops.reject(db, [r["id"] for r in items(db)][:2], "alice", "not now")
    assert run_plan(db, s, NOW).created == 2            # room for two more once a person has reviewed two


def test_nobot_in_a_bio_is_honoured_like_an_opt_out(db):
    build_world(db)
    db.execute("UPDATE users SET bio = '只和真人聊天 #NoBot' WHERE uid = 'u4'")
    summary = run_plan(db, engagement_settings(), NOW)
    targets = {r["target_uid"] for r in items(db)}
    assert "u4" not in targets and "u5" in targets
    assert summary.skipped["opt_out"] == 2


def test_templates_written_for_a_seeded_target_reach_the_cluster_that_matched_it(db):
    build_world(db)
    db.execute("UPDATE audiences SET name = NULL, auto_name = '健身·增肌', target = '健身人群' WHERE id = 1")
    only_target = [{"name": "fit", "audience": "健身人群", "kind": "reply", "variants": ["{nickname} 练得真好，{topic}一起加油"]}]
    run_plan(db, engagement_settings(templates=only_target, drafting={"builtin": False}), NOW)
    fit = [r for r in items(db) if r["kind"] == "reply"]
    assert fit and {r["template"] for r in fit} == {"fit"}
    assert {r["target_uid"] for r in fit} == {"u0", "u2", "u4"}
