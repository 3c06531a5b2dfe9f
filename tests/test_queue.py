"""The queue's state machine, its audit log, and the queue/plan/optout CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.engage import queue_ops
from bot.engage.planner import run_plan
from storage import engagement as store
from storage.db import connect
from conftest import approver
from test_queue_world import NOW, build_world, engagement_settings


@pytest.fixture
def planned(db):
    build_world(db, users=4, posts_per_user=1)
    run_plan(db, engagement_settings(), NOW)
    return [r["id"] for r in store.list_items(db)]


def test_approve_needs_a_person_and_is_audited(db, planned):
    with pytest.raises(queue_ops.QueueError, match="person's name"):
        queue_ops.approve(db, planned[:1], "huaxiang/planner")
    with pytest.raises(queue_ops.QueueError):
        queue_ops.approve(db, planned[:1], "  ")
    approver(db, "alice", "bob")
    (c,) = queue_ops.approve(db, planned[:1], "alice", NOW)
    assert c.ok
    item = store.get_item(db, planned[0])
    assert item.status == "approved" and item.approved_by == "alice"
    last = store.audit_for(db, planned[0])[-1]
    assert (last["actor"], last["action"], last["from_status"], last["to_status"]) == ("alice", "approve", "pending", "approved")
    # approving again is refused, not silently repeated
    (again,) = queue_ops.approve(db, planned[:1], "bob")
    assert not again.ok and "approved" in again.message


def test_approving_needs_an_approver_account_even_before_any_exists(db, planned):
    """No accounts at all: a typed name approves nothing, and says how to create an approver."""
    with pytest.raises(queue_ops.QueueError, match="users add NAME --role approver"):
        queue_ops.approve(db, planned[:1], "alice")
    assert store.get_item(db, planned[0]).status == "pending"
    assert [r["action"] for r in store.audit_for(db, planned[0])] == ["plan"]


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_a_viewer_or_editor_cannot_approve(db, planned, role):
    approver(db, "小李", role=role)
    with pytest.raises(queue_ops.QueueError, match=f"not allowed.*role {role}"):
        queue_ops.approve(db, planned[:1], "小李")
    approver(db, "王芳")
    with pytest.raises(queue_ops.QueueError, match="needs an active review account"):
        queue_ops.approve(db, planned[:1], "陌生人")                     # a name that is no account
    assert store.get_item(db, planned[0]).status == "pending"
    assert queue_ops.approve(db, planned[:1], "王芳")[0].ok


def test_edit_keeps_text_before_and_after_and_needs_new_approval(db, planned):
    item_id = planned[0]
    old = store.get_item(db, item_id).text
    queue_ops.approve(db, [item_id], approver(db, "alice", "bob"))
    item = queue_ops.edit(db, item_id, "改过的文字，谢谢分享", "bob", engagement_settings())
    assert item.status == "pending" and item.approved_by is None and item.text == "改过的文字，谢谢分享"
    last = store.audit_for(db, item_id)[-1]
    assert (last["actor"], last["action"], last["text_before"], last["text_after"]) == ("bob", "edit", old, "改过的文字，谢谢分享")
    with pytest.raises(queue_ops.QueueError, match="limit 140"):
        queue_ops.edit(db, item_id, "长" * 141, "bob", engagement_settings())


def test_invalid_transitions_are_refused(db, planned):
    a, b = planned[:2]
    approver(db)
    queue_ops.reject(db, [a], "alice", "off topic")
    assert store.get_item(db, a).status == "rejected"
    assert not queue_ops.approve(db, [a], "alice")[0].ok
    with pytest.raises(queue_ops.QueueError):
        queue_ops.edit(db, a, "x", "alice", engagement_settings())
    with pytest.raises(queue_ops.QueueError, match="sending.*unknown|only sending"):
        queue_ops.resolve(db, b, True, "alice")
    with pytest.raises(queue_ops.QueueError, match="does not exist"):
        queue_ops.cancel(db, 999, "alice", "x")


def test_unreviewed_items_expire(db, planned):
    expires = store.get_item(db, planned[0]).expires_at
    assert expires is not None
    queue_ops.approve(db, planned[:1], approver(db))
    n = queue_ops.expire_due(db, NOW + timedelta(days=30))
    assert n == len(planned) - 1
    assert store.get_item(db, planned[0]).status == "approved"      # approved items are the sender's to cancel
    assert {store.get_item(db, i).status for i in planned[1:]} == {"expired"}


def test_audit_log_is_append_only(db, planned):
    import sqlite3

    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_log")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_log SET actor = 'mallory'")


def _cli_world(tmp_path):
    db = connect(tmp_path / "q.db")
    build_world(db, users=4, posts_per_user=1)
    db.close()
    (tmp_path / "huaxiang.toml").write_text(
        '[engagement]\nquiet_hours = ""\nmin_spacing_s = 0\nspacing_jitter_s = 0\nmax_post_age_days = 3650\n'
        'follow_suggestions = false\n'
        '[[engagement.templates]]\nname = "tips"\nvariants = ["{nickname} 说得好！欢迎交流{topic}", "同感，{topic}要坚持"]\n',
        encoding="utf-8")


def test_cli_plan_list_show_approve_reject_edit(cli, tmp_path):
    _cli_world(tmp_path)
    code, out, err = cli("--db", "q.db", "plan")
    assert code == 0, err
    assert "planned 4 new item(s)" in out and "pending 4" in out
    code, out, _ = cli("--db", "q.db", "plan")
    assert "planned 0 new item(s)" in out and "already planned 4" in out
    code, out, _ = cli("--db", "q.db", "queue", "list", "--status", "pending", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 4
    ids = [str(r["id"]) for r in rows]
    code, out, _ = cli("--db", "q.db", "queue", "list", "--audience", "健身达人")
    assert code == 0 and "健身达人" in out and "新手妈妈" not in out
    code, out, err = cli("--db", "q.db", "queue", "approve", ids[0], ids[1], "--by", "alice")
    assert code == 1 and out == "" and err.count("\n") == 1 and "huaxiang users add NAME --role approver" in err
    assert store.get_item(connect(tmp_path / "q.db"), int(ids[0])).status == "pending"
    approver(tmp_path / "q.db", "alice", "bob")
    code, out, err = cli("--db", "q.db", "queue", "approve", ids[0], ids[1], "--by", "alice")
    assert code == 0 and f"approved #{ids[0]}" in out
    code, out, err = cli("--db", "q.db", "queue", "reject", ids[2], "--by", "alice", "--reason", "tone")
    assert code == 0 and "rejected" in out
    code, out, err = cli("--db", "q.db", "queue", "edit", ids[3], "--text", "新的草稿", "--by", "bob")
    assert code == 0 and "pending" in out
    code, out, _ = cli("--db", "q.db", "queue", "show", ids[3])
    assert "新的草稿" in out and "bob  edit" in out and "=>" in out
    code, out, err = cli("--db", "q.db", "queue", "approve", ids[2], "--by", "alice")
    assert code == 1 and "rejected" in err
    code, out, err = cli("--db", "q.db", "queue", "approve", ids[3])
    assert code == 2  # --by is required


def test_cli_optout_and_blocklist_cancel_open_items(cli, tmp_path):
    _cli_world(tmp_path)
    cli("--db", "q.db", "plan")
    code, out, _ = cli("--db", "q.db", "optout", "add", "用户1", "--by", "alice", "--reason", "asked by DM")
    assert code == 0 and "weibo:u1" in out and "cancelled 1" in out
    code, out, _ = cli("--db", "q.db", "blocklist", "add", "u2", "--by", "alice", "--reason", "competitor")
    assert "cancelled 1" in out
    code, out, _ = cli("--db", "q.db", "optout", "list", "--json")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["uid"] == "u1" and row["evidence"] == "asked by DM" and row["origin"] == "manual"
    code, out, _ = cli("--db", "q.db", "blocklist", "remove", "u2", "--by", "alice")
    assert "removed" in out
    code, out, err = cli("--db", "q.db", "optout", "add", "u3", "--by", "system")
    assert code == 1 and "person's name" in err
