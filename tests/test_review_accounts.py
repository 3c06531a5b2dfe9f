"""Review accounts and roles, follow to-dos, undo, read-only items, paging and search,
and the review API's handling of hostile credentials and bodies (issues 16 and 17)."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from bot.engage import queue_ops
from bot.engage import accounts
from bot.engage.planner import run_plan
from bot.engage.review.app import create_app
from bot.engage.review.auth import derive, load_or_create_token
from bot.engage.sender import run_send
from storage import engagement as store
from test_queue_world import NOW, TEMPLATES, FakePlatform, build_world, engagement_settings
from test_sender import LATER

PASSWORD = "correct horse battery"


@pytest.fixture
def world(tmp_path, db):
    build_world(db, users=6, posts_per_user=2, texts={"p0_0": "今天的蛋白粉测评 \u202e反转名字"})
    s = engagement_settings(templates=TEMPLATES, max_post_age_days=3650, follow_suggestions=True)
    run_plan(db, s, NOW)
    path = db.execute("PRAGMA database_list").fetchone()[2]
    return path, s, db


def team(db) -> None:
    for name, role in (("王芳", "approver"), ("小李", "editor"), ("观察员", "viewer"), ("赵总", "approver")):
        accounts.add(db, name, role, PASSWORD)


def client(world) -> TestClient:
    path, s, _ = world
    return TestClient(create_app(path, s, load_or_create_token(path), fail_delay_s=0))


def sign_in(c: TestClient, name: str, password: str = PASSWORD):
    return c.post("/login", data={"name": name, "password": password}, follow_redirects=False)


def csrf(c: TestClient) -> dict:
    return {"X-CSRF-Token": c.get("/api/session").json()["csrf"]}


def pending_reply(db) -> int:
    return next(r["id"] for r in store.list_items(db, status="pending") if r["kind"] == "reply")


# -- accounts ------------------------------------------------------------------------

def test_passwords_are_scrypt_hashes_and_names_are_checked(db):
    acc = accounts.add(db, "王芳", "approver", PASSWORD)
    stored = db.execute("SELECT password_hash FROM accounts WHERE id = ?", (acc.id,)).fetchone()[0]
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert accounts.verify_password(PASSWORD, stored) and not accounts.verify_password("wrong", stored)
    for bad in ("huaxiang/sender", "huaxiang／sender", "\u200bhuaxiang/sender", "", "a\u202eb"):
        with pytest.raises(accounts.AccountError):
            accounts.add(db, bad, "approver", PASSWORD)
    with pytest.raises(accounts.AccountError, match="at least 8"):
        accounts.add(db, "短", "viewer", "short")
    with pytest.raises(accounts.AccountError, match="role must be"):
        accounts.add(db, "x1", "owner", PASSWORD)


def test_users_cli_add_list_disable_reset(cli, monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = cli("--db", "t.db", "users", "add", "王芳", "--role", "approver", "--password-stdin")
    assert code == 0, err
    code, out, err = cli("--db", "t.db", "users", "add", "小李", "--role", "editor")
    assert code == 0 and "password (shown once):" in out
    code, out, err = cli("--db", "t.db", "users", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert {(r["name"], r["role"], r["disabled"]) for r in rows} == {("王芳", "approver", 0), ("小李", "editor", 0)}
    assert all("password_hash" not in r for r in rows)
    assert cli("--db", "t.db", "users", "disable", "小李")[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("another long one\n"))
    assert cli("--db", "t.db", "users", "reset", "王芳", "--password-stdin", "--role", "admin")[0] == 0
    code, out, err = cli("--db", "t.db", "users", "list", "--json")
    rows = {json.loads(line)["name"]: json.loads(line) for line in out.splitlines()}
    assert rows["小李"]["disabled"] == 1 and rows["王芳"]["role"] == "admin"
    code, out, err = cli("--db", "t.db", "users", "add", "王芳", "--role", "viewer")
    assert code == 1 and "exists already" in err and "Traceback" not in err


def test_sign_in_session_expiry_and_sign_out(world):
    _, _, db = world
    team(db)
    c = client(world)
    assert c.get("/").status_code == 401 and 'id="password"' in c.get("/").text
    r = sign_in(c, "王芳")
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    session = c.get("/api/session").json()
    assert session["user"]["name"] == "王芳" and session["user"]["role"] == "approver" and session["accounts"]
    assert session["language"] == "zh" and session["messages"]["btn.approve"] == "批准"
    db.execute("UPDATE review_sessions SET expires_at = '2000-01-01T00:00:00+00:00'")
    assert c.get("/api/session").status_code == 401
    sign_in(c, "王芳")
    c.post("/api/logout", headers=csrf(c))
    assert c.get("/api/session").status_code == 401


def test_failed_sign_ins_are_slowed(world):
    _, _, db = world
    team(db)
    c = client(world)
    for _ in range(3):
        assert sign_in(c, "王芳", "wrong password").status_code in (401, 429)
    r = sign_in(c, "王芳")                   # the right password, but the account must wait first
    assert r.status_code == 429 and "秒后再试" in r.text
    assert c.get("/api/session").status_code == 401
    db.execute("UPDATE accounts SET last_failed_at = '2000-01-01T00:00:00+00:00'")
    assert sign_in(c, "王芳").status_code == 303
    assert sign_in(c, "nobody", "whatever").status_code == 401


def test_roles_viewer_reads_editor_edits_approver_approves_all_named(world):
    _, _, db = world
    team(db)
    item_id = pending_reply(db)
    viewer = client(world)
    sign_in(viewer, "观察员")
    assert viewer.get("/api/items").status_code == 200
    r = viewer.post("/api/items/approve", json={"ids": [item_id]}, headers=csrf(viewer))
    assert r.status_code == 403 and store.get_item(db, item_id).status == "pending"
    assert viewer.post(f"/api/items/{item_id}/edit", json={"text": "x"}, headers=csrf(viewer)).status_code == 403

    editor = client(world)
    sign_in(editor, "小李")
    assert editor.post("/api/items/approve", json={"ids": [item_id]}, headers=csrf(editor)).status_code == 403
    r = editor.post(f"/api/items/{item_id}/edit", json={"text": "蛋白粉测评很实用，谢谢分享", "by": "mallory"},
                    headers=csrf(editor))
    assert r.status_code == 200

    approver = client(world)
    sign_in(approver, "王芳")
    r = approver.post("/api/items/approve", json={"ids": [item_id], "by": "someone else"}, headers=csrf(approver))
    assert r.status_code == 200 and r.json()[0]["ok"], r.text
    item = store.get_item(db, item_id)
    assert item.status == "approved" and item.approved_by == "王芳"
    audit = [(a["actor"], a["action"]) for a in store.audit_for(db, item_id)]
    assert ("小李", "edit") in audit and ("王芳", "approve") in audit and all(a != "mallory" for a, _ in audit)


def test_token_only_reads_once_accounts_exist(world):
    path, s, db = world
    team(db)
    token = load_or_create_token(path)
    c = client(world)
    h = {"Authorization": f"Bearer {token}", "X-CSRF-Token": derive(token, "csrf")}
    assert c.get("/api/items", headers=h).status_code == 200
    r = c.post("/api/items/approve", json={"ids": [pending_reply(db)], "by": "alice"}, headers=h)
    assert r.status_code == 403


def test_cli_approve_needs_an_existing_approver_account(world, cli):
    path, _, db = world
    team(db)
    item_id = pending_reply(db)
    code, out, err = cli("--db", path, "queue", "approve", str(item_id), "--by", "alice")
    assert code == 1 and "active review account" in err
    code, out, err = cli("--db", path, "queue", "approve", str(item_id), "--by", "小李")
    assert code == 1 and "not allowed" in err
    code, out, err = cli("--db", path, "queue", "approve", str(item_id), "--by", "王芳")
    assert code == 0, err
    assert store.get_item(db, item_id).approved_by == "王芳"


def test_no_accounts_no_approval_anywhere(world, cli):
    """Before the team has any account, a typed name approves nothing: CLI, API and queue_ops."""
    path, _, db = world
    item_id = pending_reply(db)
    with pytest.raises(queue_ops.QueueError, match="users add NAME --role approver"):
        queue_ops.approve(db, [item_id], "alice")
    code, out, err = cli("--db", path, "queue", "approve", str(item_id), "--by", "alice")
    assert code == 1 and err.strip().count("\n") == 0 and "`huaxiang users add NAME --role approver`" in err
    c = client(world)
    c.get(f"/?token={load_or_create_token(path)}")
    assert "approve" not in c.get("/api/session").json()["user"]["rights"]
    r = c.post("/api/items/approve", json={"ids": [item_id], "by": "alice"}, headers=csrf(c))
    assert r.status_code == 403 and "users add" in r.json()["detail"]
    assert "approve" not in c.get(f"/api/items/{item_id}").json()["item"]["actions"]
    assert store.get_item(db, item_id).status == "pending"
    assert [a["action"] for a in store.audit_for(db, item_id)] == ["plan"]


def test_sender_holds_an_item_whose_approver_may_no_longer_approve(world, cli):
    """Approved, then the approver is disabled (or demoted): the sender holds the item and says why."""
    path, s, db = world
    team(db)
    ids = [r["id"] for r in store.list_items(db, status="pending") if r["kind"] == "reply"][:2]
    assert queue_ops.approve(db, ids[:1], "王芳")[0].ok and queue_ops.approve(db, ids[1:], "赵总")[0].ok
    accounts.set_disabled(db, "王芳", True)
    accounts.reset(db, "赵总", PASSWORD, role="editor")
    fp = FakePlatform()
    summary = run_send(db, s, LATER, platform=fp, dry_run=False)
    assert fp.calls == 0 and summary.sent == 0 and {store.get_item(db, i).status for i in ids} == {"approved"}
    assert [i for i, _ in summary.held] == ids and all("not an active account allowed to approve" in why
                                                        for _, why in summary.held)
    for item_id in ids:
        item = store.get_item(db, item_id)
        assert item.last_error.startswith("approval: approved by")
        last = store.audit_for(db, item_id)[-1]
        assert (last["actor"], last["action"], last["to_status"]) == (queue_ops.SENDER, "hold", "approved")
    run_send(db, s, LATER, platform=fp, dry_run=False)            # polling again does not flood the audit log
    assert sum(a["action"] == "hold" for a in store.audit_for(db, ids[0])) == 1
    # the CLI names the held item and the reason
    code, out, err = cli("--db", path, "send", "--mode", "manual", "--worklist-dir", "wl")
    assert code == 0 and f"held #{ids[0]}: approval: approved by '王芳'" in out, (out, err)
    accounts.set_disabled(db, "王芳", False)                         # enabled again: now it may go
    run_send(db, s, LATER, platform=fp, dry_run=False)
    assert fp.calls == 1 and store.get_item(db, ids[0]).status == "sent"
    assert store.get_item(db, ids[1]).status == "approved"


def test_disabling_or_demoting_an_approver_says_what_will_be_held(world, cli):
    path, _, db = world
    team(db)
    ids = [r["id"] for r in store.list_items(db, status="pending") if r["kind"] == "reply"][:2]
    queue_ops.approve(db, ids, "王芳")
    code, out, err = cli("--db", path, "users", "disable", "王芳")
    assert code == 0 and "2 approved item(s) by 王芳 will not be sent until an approver approves them again" in out
    code, out, err = cli("--db", path, "users", "enable", "王芳")
    assert code == 0 and "will not be sent" not in out
    code, out, err = cli("--db", path, "users", "disable", "赵总")          # approved nothing: nothing to say
    assert code == 0 and out.strip() == "赵总: disabled"


def test_second_approval_needs_a_different_approver(world):
    path, s, db = world
    s.review.second_approval = True
    team(db)
    item_id = pending_reply(db)
    a, b = client((path, s, db)), client((path, s, db))
    sign_in(a, "王芳")
    sign_in(b, "赵总")
    r = a.post("/api/items/approve", json={"ids": [item_id]}, headers=csrf(a)).json()[0]
    assert r["ok"] and "second approver" in r["message"] and store.get_item(db, item_id).status == "pending"
    assert a.get(f"/api/items/{item_id}").json()["item"]["first_approved_by"] == "王芳"
    again = a.post("/api/items/approve", json={"ids": [item_id]}, headers=csrf(a)).json()[0]
    assert not again["ok"] and store.get_item(db, item_id).status == "pending"
    assert b.post("/api/items/approve", json={"ids": [item_id]}, headers=csrf(b)).json()[0]["ok"]
    assert store.get_item(db, item_id).status == "approved"
    assert [x["actor"] for x in store.audit_for(db, item_id) if x["action"].startswith("approve")] == ["王芳", "赵总"]


# -- decisions ------------------------------------------------------------------------

def test_undo_the_last_decision_for_a_few_seconds(world):
    from datetime import datetime, timedelta, timezone

    _, _, db = world
    item_id = pending_reply(db)
    t0 = datetime.now(timezone.utc)
    queue_ops.reject(db, [item_id], "alice", "off topic", now=t0)
    with pytest.raises(queue_ops.QueueError, match="only alice"):
        queue_ops.undo(db, item_id, "bob", 10, now=t0 + timedelta(seconds=2))
    queue_ops.undo(db, item_id, "alice", 10, now=t0 + timedelta(seconds=2))
    assert store.get_item(db, item_id).status == "pending"
    assert store.audit_for(db, item_id)[-1]["action"] == "undo"
    team(db)
    queue_ops.approve(db, [item_id], "王芳", now=t0)
    with pytest.raises(queue_ops.QueueError, match="undo is possible for 10 s"):
        queue_ops.undo(db, item_id, "王芳", 10, now=t0 + timedelta(seconds=30))
    assert store.get_item(db, item_id).status == "approved"


def test_follow_suggestions_are_a_todo_never_stuck(world, cli):
    path, _, db = world
    follows = [r["id"] for r in store.list_items(db, kind="follow")]
    assert len(follows) >= 2
    c = client(world)
    c.get(f"/?token={load_or_create_token(path)}")
    card = next(i for i in c.get("/api/items?kind=follow").json() if i["id"] == follows[0])
    assert card["actions"] == ["done", "dismiss"]
    r = c.post("/api/items/approve", json={"ids": [follows[0]], "by": "alice"}, headers=csrf(c))
    assert r.status_code == 403 and store.get_item(db, follows[0]).status == "pending"   # the token never approves
    with pytest.raises(queue_ops.QueueError, match="no draft"):
        queue_ops.edit(db, follows[0], "hi", "alice", world[1])
    assert c.post("/api/items/done", json={"ids": [follows[0]], "by": "alice"}, headers=csrf(c)).json()[0]["ok"]
    assert store.get_item(db, follows[0]).status == "done"
    code, out, err = cli("--db", path, "queue", "dismiss", str(follows[1]), "--by", "alice")
    assert code == 0, err
    assert store.get_item(db, follows[1]).status == "dismissed"
    card = c.get(f"/api/items/{follows[0]}").json()["item"]
    assert card["readonly"] and card["actions"] == []
    team(db)
    (r,) = queue_ops.approve(db, [follows[0]], "王芳")
    assert not r.ok and "done by hand" in r.message


def test_finished_items_are_read_only(world, cli):
    path, s, db = world
    ids = [r["id"] for r in store.list_items(db, status="pending") if r["kind"] == "reply"][:2]
    team(db)
    queue_ops.approve(db, ids, "王芳")
    run_send(db, s, LATER, platform=FakePlatform(), dry_run=False)
    sent = next(i for i in ids if store.get_item(db, i).status == "sent")
    c = client(world)
    sign_in(c, "王芳")
    card = c.get(f"/api/items/{sent}").json()["item"]
    assert card["readonly"] and card["actions"] == []
    r = c.post("/api/items/reject", json={"ids": [sent]}, headers=csrf(c)).json()[0]
    assert not r["ok"] and store.get_item(db, sent).status == "sent"
    # a failed item is read-only in the API; the CLI retries it only when asked to
    failed = ids[1] if ids[1] != sent else ids[0]
    db.execute("UPDATE queue SET status = 'failed' WHERE id = ?", (failed,))
    assert not c.post("/api/items/approve", json={"ids": [failed]}, headers=csrf(c)).json()[0]["ok"]
    assert cli("--db", path, "queue", "approve", str(failed), "--by", "王芳")[0] == 1
    assert cli("--db", path, "queue", "approve", str(failed), "--by", "王芳", "--retry")[0] == 0


def test_paging_counts_search_sort_and_dates(world):
    path, _, db = world
    c = client(world)
    c.get(f"/?token={load_or_create_token(path)}")
    everything = c.get("/api/items?status=pending&limit=5000")
    total = int(everything.headers["X-Total-Count"])
    assert total == len(everything.json()) > 4
    page1 = c.get("/api/items?status=pending&limit=2&offset=0&sort=score")
    page2 = c.get("/api/items?status=pending&limit=2&offset=2&sort=score")
    assert int(page1.headers["X-Total-Count"]) == total and len(page1.json()) == 2
    assert not {i["id"] for i in page1.json()} & {i["id"] for i in page2.json()}
    scores = [i["score"] or 0 for i in c.get("/api/items?status=pending&sort=score").json()]
    assert scores == sorted(scores, reverse=True)
    found = c.get("/api/items?q=蛋白粉")
    assert int(found.headers["X-Total-Count"]) >= 1 and all("蛋白粉" in (i["post_text"] or "") + (i["text"] or "")
                                                           for i in found.json())
    assert c.get("/api/items?q=%25").headers["X-Total-Count"] == "0"      # LIKE wildcards are literal
    day = NOW.astimezone().strftime("%Y-%m-%d")
    assert int(c.get("/api/items?date_from=2000-01-01&date_to=2000-01-02").headers["X-Total-Count"]) == 0
    assert int(c.get(f"/api/items?date_from=2000-01-01&date_to={day}").headers["X-Total-Count"]) >= 1
    assert c.get("/api/items?date_from=yesterday").status_code == 422


def test_card_context_thread_why_and_history(world):
    path, _, db = world
    item = store.list_items(db, status="pending", kind="reply")[0]
    db.execute("INSERT INTO posts (platform, pid, uid, kind, parent_pid, text, likes, created_at, first_seen)"
                    " VALUES ('weibo', 'c1', 'u9', 'comment', ?, '同款蛋白粉，好喝吗', 7, ?, ?)",
                    (item["post_pid"], NOW.isoformat(), NOW.isoformat()))
    c = client(world)
    c.get(f"/?token={load_or_create_token(path)}")
    card = c.get(f"/api/items/{item['id']}").json()["item"]
    ctx = card["context"]
    assert ctx["comments"][0]["text"] == "同款蛋白粉，好喝吗"
    assert ctx["recent_posts"] and all(p["pid"] != item["post_pid"] for p in ctx["recent_posts"])
    assert ctx["why"]["tier"] == item["tier"] and ctx["why"]["audience"] == item["audience"]
    assert ctx["history"][0]["action"] == "plan"
    assert ctx["draft_reason"]["post_kind"] and ctx["draft_reason"]["drafter"]     # the planner's reasoning (0080)
    # times are campaign-local, one format
    assert len(card["display"]["scheduled_at"]) == 16 and "T" not in card["display"]["scheduled_at"]


# -- hostile credentials and bodies (issue 17, items 5 and 6) ----------------------------------

@pytest.mark.parametrize("with_accounts", [False, True])
def test_non_ascii_credentials_are_refused_not_500(world, with_accounts):
    _, _, db = world
    if with_accounts:
        team(db)
    c = client(world)
    cases = [
        c.get("/?token=%C3%A9"),
        c.get("/api/items", headers={"Cookie": "hx_session=\xc3\xa9".encode("latin-1")}),
        c.get("/api/items", headers={"Authorization": b"Bearer \xc3\xa9"}),
        c.post("/api/items/approve", json={"ids": [1]}, headers={"X-CSRF-Token": b"\xc3\xa9"}),
        c.post("/login", content=b"token=%C3%A9&name=%C3%A9&password=%C3%A9",
               headers={"Content-Type": "application/x-www-form-urlencoded"}),
        c.post("/login", content=b"token=\xff\xfe&name=\xc3&password=\xff",
               headers={"Content-Type": "application/x-www-form-urlencoded"}),
    ]
    for r in cases:
        assert r.status_code in (401, 403), (r.request.url, r.status_code, r.text[:200])
        assert "default-src 'none'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    # signed in, a non-ASCII CSRF header is a 403 too
    if with_accounts:
        sign_in(c, "王芳")
    else:
        c.get(f"/?token={load_or_create_token(world[0])}")
    r = c.post("/api/items/approve", json={"ids": [1], "by": "a"}, headers={"X-CSRF-Token": b"\xc3\xa9"})
    assert r.status_code == 403


def test_request_bodies_have_a_limit(world):
    path, s, db = world
    c = client(world)
    c.get(f"/?token={load_or_create_token(path)}")
    item_id = pending_reply(db)
    huge = "拒" * (s.review.max_body_bytes // 2)
    r = c.post("/api/items/reject", json={"ids": [item_id], "by": "alice", "reason": huge}, headers=csrf(c))
    assert r.status_code == 413 and r.headers["x-content-type-options"] == "nosniff"
    assert store.get_item(db, item_id).status == "pending"
    r = c.post("/api/items/reject", json={"ids": [item_id], "by": "alice", "reason": "x" * 5000}, headers=csrf(c))
    assert r.status_code == 422                       # a reason is at most 2000 characters


def test_trying_many_names_from_one_address_is_slowed(world):
    _, _, db = world
    team(db)
    c = client(world)
    for k in range(5):
        assert sign_in(c, f"guess{k}", "whatever").status_code == 401
    r = sign_in(c, "王芳")
    assert r.status_code == 429 and c.get("/api/session").status_code == 401


def test_sign_in_throttle_doubles_and_forgets_on_success():
    from bot.engage.review.auth import SignInThrottle

    th = SignInThrottle(free=2, cap=60)
    th.failed("1.2.3.4")
    assert th.wait("1.2.3.4") == 0
    th.failed("1.2.3.4")
    assert 0 < th.wait("1.2.3.4") <= 2 and th.wait("5.6.7.8") == 0
    th.failed("1.2.3.4")
    assert 2 < th.wait("1.2.3.4") <= 4
    th.succeeded("1.2.3.4")
    assert th.wait("1.2.3.4") == 0


def test_queue_show_has_the_card_context_and_local_times(world, cli):
    path, _, db = world
    item = store.list_items(db, status="pending", kind="reply")[0]
    db.execute("INSERT INTO posts (platform, pid, uid, kind, parent_pid, text, likes, created_at, first_seen)"
                    " VALUES ('weibo', 'c1', 'u9', 'comment', ?, '同款蛋白粉，好喝吗', 7, ?, ?)",
                    (item["post_pid"], NOW.isoformat(), NOW.isoformat()))
    code, out, err = cli("--db", path, "queue", "show", str(item["id"]))
    assert code == 0, err
    assert "comment: u9: 同款蛋白粉，好喝吗 (likes 7)" in out and "times in Asia/Shanghai" in out
    assert "+00:00" not in out


def test_card_renders_issue_13_columns_when_they_exist(world):
    """target / target_relevance / draft_reason (migration 0080) reach the card."""
    path, _, db = world
    item_id = pending_reply(db)
    reason = {"post_kind": "question", "phrases": ["蛋白粉", "结块"], "topics": ["健身"],
              "library": {"id": 3, "text": "先放粉再加水"}, "template": "tips", "drafter": "builtin", "fallback": False}
    db.execute("UPDATE queue SET target = '健身爱好者', target_relevance = 0.83, draft_reason = ? WHERE id = ?",
                    (json.dumps(reason, ensure_ascii=False), item_id))
    c = client(world)
    c.get(f"/?token={load_or_create_token(path)}")
    ctx = c.get(f"/api/items/{item_id}").json()["item"]["context"]
    assert ctx["why"]["target"] == "健身爱好者" and ctx["why"]["relevance"] == 0.83
    assert ctx["why"]["phrases"] == ["蛋白粉", "结块"] and ctx["draft_reason"]["library"]["text"] == "先放粉再加水"


def test_refusals_carry_a_code_the_page_words_in_chinese(world):
    path, s, db = world
    team(db)
    c = client(world)
    sign_in(c, "王芳")
    follow = store.list_items(db, kind="follow")[0]["id"]
    r = c.post("/api/items/approve", json={"ids": [follow]}, headers=csrf(c)).json()[0]
    assert not r["ok"] and r["code"] == "follow_todo" and r["values"] == {"id": str(follow)}
    r = c.post(f"/api/items/{pending_reply(db)}/edit", json={"text": "长" * 500}, headers=csrf(c))
    assert r.status_code == 400 and r.headers["X-Error-Code"] == "too_long"
    assert json.loads(r.headers["X-Error-Values"])["limit"] == str(s.engagement.max_length)
    messages = c.get("/api/session").json()["messages"]
    assert messages["err.follow_todo"].startswith("#{id} 是关注建议")


def test_sender_holds_a_reply_with_one_approver_when_two_are_required(world):
    _, s, db = world
    ids = [r["id"] for r in store.list_items(db, status="pending") if r["kind"] == "reply"][:2]
    team(db)
    queue_ops.approve(db, ids[:1], "王芳")                           # approved before the rule was switched on
    s.review.second_approval = True
    queue_ops.approve(db, ids[1:], "王芳", second_approval=True)     # first approval
    queue_ops.approve(db, ids[1:], "赵总", second_approval=True)     # second
    fp = FakePlatform()
    run_send(db, s, LATER, platform=fp, dry_run=False)
    assert store.get_item(db, ids[0]).status == "approved"          # held: one approver only
    assert store.get_item(db, ids[1]).status == "sent" and fp.calls == 1


def test_page_in_english_on_the_switch(world):
    path, s, db = world
    s.ui.language = "en"
    team(db)
    c = client((path, s, db))
    assert "Sign in" in c.get("/").text and '<html lang="en">' in c.get("/").text
    sign_in(c, "王芳")
    assert "huaxiang review queue" in c.get("/").text
    session = c.get("/api/session").json()
    assert session["language"] == "en" and session["messages"]["btn.approve"] == "Approve"


def test_serving_the_lan_warns_about_tls_and_accounts():
    from bot.commands.review import lan_warning

    without = lan_warning("0.0.0.0", with_accounts=False)
    assert "without TLS" in without and "docs/review.md" in without and "users add" in without
    assert "accounts and roles decide" in lan_warning("192.168.1.5", with_accounts=True)
