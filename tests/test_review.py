"""The review page: token login, CSRF, escaping, and keyboard review in real Chromium."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time

import pytest
from fastapi.testclient import TestClient

from bot.engage import queue_ops
from bot.engage.planner import run_plan
from bot.engage.review.app import create_app
from bot.engage.review.auth import load_or_create_token, token_path
from bot.report import render_report
from storage import engagement as store
from storage.db import connect
from test_queue_world import NOW, TEMPLATES, build_world, engagement_settings

XSS = "<script>alert(1)</script>"


@pytest.fixture
def world(tmp_path):
    path = tmp_path / "r.db"
    db = connect(path)
    build_world(db, users=4, posts_per_user=1, texts={"p0_0": XSS, "p1_0": "<img src=x onerror=alert(2)>好"})
    s = engagement_settings(templates=[TEMPLATES[0]], max_post_age_days=3650)
    run_plan(db, s, NOW)
    yield path, s, db
    db.close()


@pytest.fixture
def client(world):
    path, s, _ = world
    token = load_or_create_token(path)
    return TestClient(create_app(path, s, token, report=render_report)), token


def test_token_file_is_private_and_stable(tmp_path):
    db_path = tmp_path / "x.db"
    t1 = load_or_create_token(db_path)
    assert stat.S_IMODE(os.stat(token_path(db_path)).st_mode) == 0o600
    assert load_or_create_token(db_path) == t1 and len(t1) >= 32
    assert token_path(db_path).parent == tmp_path


def test_everything_needs_the_token(client):
    c, token = client
    assert c.get("/").status_code == 401 and "id=\"token\"" in c.get("/").text
    assert c.get("/api/items").status_code == 401
    assert c.get("/?token=wrong").status_code == 401
    r = c.get(f"/?token={token}", follow_redirects=False)
    assert r.status_code == 303 and "hx_session" in r.headers["set-cookie"]
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    assert token not in r.headers["set-cookie"]
    assert c.get("/api/items").status_code == 200


def test_state_changes_need_the_csrf_token(client, world):
    c, token = client
    _, _, db = world
    c.get(f"/?token={token}")
    item_id = store.list_items(db)[0]["id"]
    r = c.post("/api/items/approve", json={"ids": [item_id], "by": "alice"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = c.post("/api/items/approve", json={"ids": [item_id], "by": "alice"}, headers={"X-CSRF-Token": "nope"})
    assert r.status_code == 403
    assert store.get_item(db, item_id).status == "pending"
    csrf = c.get("/api/session").json()["csrf"]
    r = c.post("/api/items/reject", json={"ids": [item_id], "by": "alice"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()[0]["ok"]
    assert store.get_item(db, item_id).reviewed_by == "alice" and store.get_item(db, item_id).status == "rejected"
    # the token is nobody's account: with the right CSRF token, approving still needs an approver account
    r = c.post("/api/items/approve", json={"ids": [item_id + 1], "by": "alice"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and "users add" in r.json()["detail"]
    assert store.get_item(db, item_id + 1).status == "pending"
    r = c.post("/api/items/reject", json={"ids": [item_id + 1], "by": "huaxiang/bot"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400 and "person's name" in r.json()["detail"]


def test_bearer_token_api_and_openapi(world):
    path, s, db = world
    token = load_or_create_token(path)
    c = TestClient(create_app(path, s, token))
    h = {"Authorization": f"Bearer {token}"}
    spec = c.get("/api/openapi.json").json()
    assert {"/api/items", "/api/items/approve", "/api/items/reject", "/api/items/{item_id}/edit"} <= set(spec["paths"])
    items = c.get("/api/items?status=pending", headers=h).json()
    assert items and all(i["status"] == "pending" for i in items)
    detail = c.get(f"/api/items/{items[0]['id']}", headers=h).json()
    assert detail["audit"][0]["action"] == "plan"
    csrf = c.get("/api/session", headers=h).json()["csrf"]
    r = c.post(f"/api/items/{items[0]['id']}/edit", json={"text": "新文字", "by": "bob"},
               headers={**h, "X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["text"] == "新文字"
    r = c.post(f"/api/items/{items[0]['id']}/edit", json={"text": "长" * 200, "by": "bob"},
               headers={**h, "X-CSRF-Token": csrf})
    assert r.status_code == 400 and "limit" in r.json()["detail"]


def test_security_headers_and_host_check(world):
    path, s, _ = world
    token = load_or_create_token(path)
    c = TestClient(create_app(path, s, token, allowed_hosts={"127.0.0.1", "localhost"}), base_url="http://localhost")
    r = c.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    evil = TestClient(create_app(path, s, token, allowed_hosts={"127.0.0.1"}), base_url="http://evil.example")
    assert evil.get(f"/?token={token}").status_code == 400


def test_report_link_is_served(client):
    c, token = client
    c.get(f"/?token={token}")
    r = c.get("/report")
    assert r.status_code in (200, 503)
    assert "<html" in r.text.lower() or "not available" in r.text
    c.cookies.clear()
    assert c.get("/report").status_code == 401


def test_without_a_report_renderer_there_is_no_report(world):
    path, s, _ = world
    token = load_or_create_token(path)
    c = TestClient(create_app(path, s, token))
    c.get(f"/?token={token}")
    assert c.get("/api/counts").status_code == 200 and c.get("/report").status_code == 404


def _open_handles(path) -> int:
    """File descriptors of this process open on ``path``."""
    target, n = str(path.resolve()), 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            pass
    return n


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_every_request_closes_its_connection(world):
    path, s, db = world
    # Alone: while another connection of this process holds a lock on the file,
    # SQLite keeps a closed connection's descriptor for reuse.
    db.close()
    token = load_or_create_token(path)
    c = TestClient(create_app(path, s, token))
    c.get(f"/?token={token}")
    csrf = c.get("/api/session").json()["csrf"]
    for _ in range(20):
        assert c.get("/api/items").status_code == 200
    item_id = c.get("/api/items").json()[0]["id"]
    r = c.post("/api/items/reject", json={"ids": [item_id], "by": "alice"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()[0]["ok"]
    assert c.get("/api/items/999999").status_code == 404
    assert _open_handles(path) == 0


# -- the page in a real browser ------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(world):
    import uvicorn

    path, s, _ = world
    token = load_or_create_token(path)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(path, s, token, allowed_hosts={"127.0.0.1"}), host="127.0.0.1",
                                        port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", token
    srv.should_exit = True
    th.join(timeout=5)


def test_review_in_chromium_keyboard_edit_reject_and_escaping(browser_page, server, world):
    page = browser_page
    base, token = server
    _, _, db = world
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # log in through the form with the token
    page.goto(base + "/")
    page.fill("#token", token)
    page.click("#login")
    page.wait_for_selector("article.item")
    page.fill("#reviewer", "alice")
    page.click("h1")                                  # leave the input so keys reach the page

    # the hostile post renders as text, and nothing ran
    assert page.locator(".post-text", has_text=XSS).count() == 1
    assert page.locator("script", has_text="alert").count() == 0
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == []

    ids = [int(x) for x in page.eval_on_selector_all("article.item", "els => els.map(e => e.dataset.id)")]
    assert len(ids) == 4

    # the token is nobody's account: approving explains that an approver account is needed
    assert page.locator("#approve-note").is_visible() and "--role approver" in page.inner_text("#approve-note")
    assert page.locator(".btn-approve").count() == 0 and not page.locator("#approve-selected").is_visible()
    page.keyboard.press("j")
    first = ids[0]
    page.keyboard.press("a")
    page.wait_for_function("document.querySelector('#message-text').textContent.includes('users add')")
    assert store.get_item(db, first).status == "pending"

    # edit the (new) first one: e, type, Ctrl+Enter
    page.keyboard.press("j")
    second = int(page.eval_on_selector("article.item.current", "e => e.dataset.id"))
    page.keyboard.press("e")
    area = page.locator(f"article.item[data-id='{second}'] textarea.draft")
    area.fill("谢谢分享，我们也在练")
    with page.expect_response(lambda r: f"/api/items/{second}/edit" in r.url):   # the save, not just the typing
        page.keyboard.press("Control+Enter")
    page.wait_for_function(f"document.querySelector(\"article.item[data-id='{second}'] textarea\").value === '谢谢分享，我们也在练'")
    item = store.get_item(db, second)
    assert item.text == "谢谢分享，我们也在练" and item.reviewed_by == "alice" and item.status == "pending"
    audit = store.audit_for(db, second)[-1]
    assert audit["action"] == "edit" and audit["text_after"] == "谢谢分享，我们也在练" and audit["text_before"] != audit["text_after"]

    # reject one with the keyboard
    page.click("h1")
    third = int(page.eval_on_selector_all("article.item", "els => els.map(e => e.dataset.id)")[-1])
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")
    cur = int(page.eval_on_selector("article.item.current", "e => e.dataset.id"))
    page.keyboard.press("r")
    page.wait_for_selector(f"article.item[data-id='{cur}']", state="detached")
    assert store.get_item(db, cur).status == "rejected"
    del third

    # a POST without the CSRF token is refused, even from the logged-in page
    status = page.evaluate("""async () => {
        const r = await fetch('/api/items/approve', {method: 'POST', headers: {'Content-Type': 'application/json'},
                              body: JSON.stringify({ids: [%d], by: 'mallory'})});
        return r.status; }""" % second)
    assert status == 403
    assert store.get_item(db, second).status == "pending"
    page.screenshot(path=str(_artifact("review-page.png")))


def _artifact(name: str):
    from conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
