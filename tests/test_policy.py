"""Each engagement rule, alone: what it allows and what it stops."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from config.times import to_stored
from bot.engage import policy
from storage import engagement as store
from storage.db import transaction
from test_queue_world import NOW, engagement_settings


def action(**kw) -> policy.Action:
    base = dict(kind="reply", platform="weibo", target_uid="u1", post_id=None, post_text="今天练腿", text="加油！",
                when=NOW, source="", post_created_at=(NOW - timedelta(hours=2)).isoformat())
    base.update(kw)
    return policy.Action(**base)


def add_item(db, **kw) -> int:
    at = to_stored(kw.pop("created", NOW))
    values = {"kind": "reply", "status": "sent", "platform": "weibo", "target_uid": "u1", "text": "hi",
              "text_key": policy.text_key(kw.get("text", "hi")), "created_at": at, "source": "",
              "dedupe_key": f"k{kw.get('dedupe', id(kw))}"}
    values.update({k: v for k, v in kw.items() if k != "dedupe"})
    with transaction(db):
        return store.insert_item(db, values)


def test_quiet_hours_wrap_midnight_in_campaign_zone():
    s = engagement_settings(quiet_hours="23:00-08:00", timezone="Asia/Shanghai")
    assert policy.in_quiet_hours(s, datetime(2026, 11, 20, 16, 30, tzinfo=timezone.utc))      # 00:30 local
    assert policy.in_quiet_hours(s, datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc))       # 23:00 local
    assert not policy.in_quiet_hours(s, datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc))    # 08:00 local
    end = policy.after_quiet_hours(s, datetime(2026, 11, 20, 16, 30, tzinfo=timezone.utc))
    assert end == datetime(2026, 11, 21, 0, 0, tzinfo=timezone.utc)
    v = policy.rule_quiet_hours(s, action(when=datetime(2026, 11, 20, 16, 30, tzinfo=timezone.utc)))
    assert v.action == "wait" and v.retry_at == end
    assert policy.rule_quiet_hours(engagement_settings(quiet_hours=""), action()) is None


def test_blocklist_from_config_and_table(db):
    s = engagement_settings(blocklist=["u9"])
    assert policy.rule_blocklist(db, s, action(target_uid="u9")).rule == "blocklist"
    assert policy.rule_blocklist(db, s, action(target_uid="u1")) is None
    with transaction(db):
        store.add_block(db, "weibo", "u1", "spam", "alice", to_stored(NOW))
    assert policy.rule_blocklist(db, s, action(target_uid="u1")).action == "cancel"


def test_opt_out(db):
    assert policy.rule_opt_out(db, action()) is None
    with transaction(db):
        store.add_optout(db, "weibo", "u1", "reply", "别再@我", "c1", "huaxiang/outcomes", to_stored(NOW))
    assert policy.rule_opt_out(db, action()).rule == "opt_out"
    assert policy.rule_opt_out(db, action(platform="mastodon")) is None


def test_deny_keywords_match_post_or_draft():
    s = engagement_settings(deny_keywords=["抽奖"])
    assert policy.rule_deny_keywords(s, action(post_text="转发抽奖")).rule == "deny_keyword"
    assert policy.rule_deny_keywords(s, action(text="来抽奖")) is not None
    assert policy.rule_deny_keywords(s, action()) is None


def test_post_age_and_length():
    s = engagement_settings(max_post_age_days=2, max_length=10)
    assert policy.rule_post_age(s, action(post_created_at=(NOW - timedelta(days=3)).isoformat())).rule == "post_age"
    assert policy.rule_post_age(s, action(post_created_at=None)) is not None
    assert policy.rule_post_age(s, action()) is None
    assert policy.rule_length(s, action(text="一" * 11)).rule == "length"
    assert policy.rule_length(s, action(text="   ")) is not None
    assert policy.rule_length(s, action(text="一" * 10)) is None


def test_user_cap_counts_touches_in_window_only(db):
    s = engagement_settings(max_touches_per_user=1, window_days=7)
    add_item(db, sent_at=to_stored(NOW - timedelta(days=8)), dedupe=1)
    assert policy.rule_user_cap(db, s, action(), "send") is None
    add_item(db, sent_at=to_stored(NOW - timedelta(days=1)), dedupe=2)
    assert policy.rule_user_cap(db, s, action(), "send").rule == "user_cap"
    assert policy.rule_user_cap(db, s, action(target_uid="u2"), "send") is None


def test_planned_items_reserve_at_plan_but_not_at_send(db):
    s = engagement_settings()
    add_item(db, status="pending", scheduled_at=to_stored(NOW), dedupe=1)
    assert policy.rule_user_cap(db, s, action(), "plan") is not None
    assert policy.rule_user_cap(db, s, action(), "send") is None
    add_item(db, status="rejected", target_uid="u3", dedupe=2)
    assert policy.rule_user_cap(db, s, action(target_uid="u3"), "plan") is None


def test_identical_text_within_window(db):
    s = engagement_settings(window_days=7)
    add_item(db, text="加油 ！", text_key=policy.text_key("加油 ！"), target_uid="u5", sent_at=to_stored(NOW), dedupe=1)
    assert policy.rule_identical_text(db, s, action(text="加油！"), "send").rule == "identical_text"
    assert policy.rule_identical_text(db, s, action(text="加油！", when=NOW + timedelta(days=8)), "send") is None


def test_daily_and_hourly_caps(db):
    s = engagement_settings(daily_cap=2, hourly_cap=1)
    add_item(db, sent_at=to_stored(NOW - timedelta(minutes=10)), target_uid="a", dedupe=1)
    assert policy.rule_hourly_cap(db, s, action(), "send").rule == "hourly_cap"
    assert policy.rule_hourly_cap(db, s, action(when=NOW + timedelta(hours=1)), "send") is None
    assert policy.rule_daily_cap(db, s, action(), "send") is None
    add_item(db, sent_at=to_stored(NOW - timedelta(hours=2)), target_uid="b", dedupe=2)
    v = policy.rule_daily_cap(db, s, action(), "send")
    assert v.rule == "daily_cap" and v.action == "wait"
    # the next local day starts at 16:00 UTC (Asia/Shanghai midnight)
    assert v.retry_at == datetime(2026, 11, 20, 16, 0, tzinfo=timezone.utc)
    assert policy.rule_daily_cap(db, s, action(when=v.retry_at), "send") is None


def test_spacing_uses_the_same_jitter_for_plan_and_send(db):
    s = engagement_settings(min_spacing_s=300, spacing_jitter_s=120)
    j = policy.jitter_seconds(s, "key")
    assert 0 <= j < 120 and j == policy.jitter_seconds(s, "key")
    add_item(db, sent_at=to_stored(NOW), target_uid="a", dedupe=1)
    a = action(when=NOW + timedelta(seconds=299), jitter_key="key")
    assert policy.rule_spacing(db, s, a, "send").rule == "spacing"
    a.when = NOW + timedelta(seconds=300 + j + 1)
    assert policy.rule_spacing(db, s, a, "send") is None


def test_approval_needs_a_named_person_and_follows_are_never_sent():
    assert policy.rule_approved(action(status="approved", approved_by="alice")) is None
    for who in (None, "", "  ", "huaxiang/planner", "system", "bot"):
        assert policy.rule_approved(action(status="approved", approved_by=who)).action == "skip"
    assert policy.rule_approved(action(status="pending", approved_by="alice")) is not None
    assert policy.rule_never_follow(action(kind="follow")).action == "skip"
    for kind in ("reply", "repost", "group_reply"):
        assert policy.rule_never_follow(action(kind=kind)) is None


@pytest.mark.parametrize("violations,expected", [
    (["wait", "cancel"], "cancel"), (["wait"], "wait"), (["cancel", "skip"], "skip"), ([], None)])
def test_first_blocking_order(violations, expected):
    vs = [policy.Violation("r", "m", a) for a in violations]
    got = policy.first_blocking(vs)
    assert (got.action if got else None) == expected
