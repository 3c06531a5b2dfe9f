"""The review page in real Chromium for a team: accounts and roles, Chinese labels, the card's
context, undo, search, paging, read-only finished items, and screenshots to look at
(test-artifacts/: queue, a card with its thread, a phone, the report in zh and en)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from bot.engage import queue_ops
from bot.engage import accounts
from bot.engage.planner import run_plan
from bot.engage.review.app import create_app
from bot.engage.review.auth import load_or_create_token
from bot.report import render_report
from bot.engage.sender import run_send
from storage import engagement as store
from storage.db import connect
from test_queue_world import NOW, TEMPLATES, FakePlatform, build_world, engagement_settings
from test_sender import LATER

PASSWORD = "correct horse battery"
RLO_NAME = "\u202e反转的昵称"


def _artifact(name: str):
    from conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def team_world(tmp_path):
    path = tmp_path / "team.db"
    db = connect(path)
    build_world(db, users=28, posts_per_user=1, texts={"p0_0": "新买的蛋白粉，巧克力味，冲起来有点结块，求推荐 #健身#",
                                                       "p2_0": "第一次练硬拉，腰有点酸，是姿势不对吗？"})
    db.execute("UPDATE users SET name = ?, bio = '健身三年 | 增肌中' WHERE uid = 'u4'", (RLO_NAME,))
    for k, (who, text, likes) in enumerate((("u1", "巧克力味的确容易结块，用摇摇杯加温水", 31),
                                            ("u3", "试试香草味，我觉得更好冲", 12),
                                            ("u5", "同问！", 2))):
        db.execute("INSERT INTO posts (platform, pid, uid, kind, parent_pid, text, likes, created_at, first_seen)"
                        " VALUES ('weibo', ?, ?, 'comment', 'p0_0', ?, ?, ?, ?)",
                        (f"c{k}", who, text, likes, NOW.isoformat(), NOW.isoformat()))
    db.execute("INSERT INTO posts (platform, pid, uid, kind, text, created_at, first_seen, user_id) SELECT"
                    " 'weibo', 'p0_old', 'u0', 'post', '上周的训练计划：推拉腿三分化', ?, ?, id FROM users WHERE uid = 'u0'",
                    ("2026-11-12T10:00:00+00:00", NOW.isoformat()))
    s = engagement_settings(templates=TEMPLATES, max_post_age_days=3650, follow_suggestions=True)
    run_plan(db, s, NOW)
    sent = [r["id"] for r in store.list_items(db, status="pending", kind="reply")][-2:]
    for name, role in (("王芳", "approver"), ("小李", "editor"), ("观察员", "viewer")):
        accounts.add(db, name, role, PASSWORD)
    queue_ops.approve(db, sent, "王芳")
    run_send(db, s, LATER, platform=FakePlatform(), dry_run=False)
    yield path, s, db
    db.close()


@pytest.fixture
def team_server(team_world):
    import uvicorn

    path, s, _ = team_world
    port = _free_port()
    app = create_app(path, s, load_or_create_token(path), allowed_hosts={"127.0.0.1"}, fail_delay_s=0,
                     report=render_report)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    th.join(timeout=5)


def sign_in(page, base: str, name: str) -> None:
    page.context.clear_cookies()
    page.goto(base + "/")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_selector("article.item")


def ids_on_page(page) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all("article.item", "els => els.map(e => e.dataset.id)")]


def test_viewer_editor_approver_in_chromium(browser_page, team_server, team_world):
    page, base = browser_page, team_server
    _, _, db = team_world
    page.goto(base + "/")
    assert page.locator("#password").count() == 1 and "登录" in page.inner_text("body")

    # a viewer reads, in Chinese, and can neither press nor call approve
    sign_in(page, base, "观察员")
    body = page.inner_text("body")
    assert "画像 审核队列" in body and "当前账号：观察员（只读）" in body and "待审核" in body
    assert page.locator(".btn-approve, .btn-edit, .btn-reject").count() == 0
    assert not page.is_visible("#approve-selected")
    first = int(page.eval_on_selector("article.item.status-pending:has(textarea.draft)", "e => e.dataset.id"))
    status = page.evaluate("""async (id) => {
        const s = await (await fetch('/api/session')).json();
        const r = await fetch('/api/items/approve', {method: 'POST', headers: {'Content-Type': 'application/json',
                              'X-CSRF-Token': s.csrf}, body: JSON.stringify({ids: [id], by: '王芳'})});
        return r.status; }""", first)
    assert status == 403 and store.get_item(db, first).status == "pending"

    # an editor edits (proposes); approve is not offered
    sign_in(page, base, "小李")
    card = page.locator(f"article.item[data-id='{first}']")
    assert card.locator(".btn-approve").count() == 0 and card.locator(".btn-edit").count() == 1
    card.locator(".btn-edit").click()
    card.locator("textarea.draft").fill("结块可以先放粉再加水，摇匀就好")
    with page.expect_response(lambda r: f"/api/items/{first}/edit" in r.url):   # the save, not just the typing
        card.locator(".btn-save").click()
    page.wait_for_function(f"() => document.querySelector(\"article.item[data-id='{first}'] textarea\").value.startsWith('结块')")
    assert store.get_item(db, first).text == "结块可以先放粉再加水，摇匀就好"

    # an approver approves; both are named in the audit log
    sign_in(page, base, "王芳")
    page.locator(f"article.item[data-id='{first}'] .btn-approve").click()
    page.wait_for_selector(f"article.item[data-id='{first}']", state="detached")
    item = store.get_item(db, first)
    assert item.status == "approved" and item.approved_by == "王芳"
    audit = [(a["actor"], a["action"]) for a in store.audit_for(db, first)]
    assert ("小李", "edit") in audit and ("王芳", "approve") in audit

    # bulk selection: check all on the page, and clear it again
    page.check("#check-all")
    checked = page.eval_on_selector_all("article.item .check:checked", "els => els.length")
    assert checked == len(ids_on_page(page))
    page.uncheck("#check-all")
    assert page.eval_on_selector_all("article.item .check:checked", "els => els.length") == 0

    # undo, within the window, puts it back
    page.click("#undo")
    page.wait_for_selector(f"article.item[data-id='{first}']")
    assert store.get_item(db, first).status == "pending" and store.audit_for(db, first)[-1]["action"] == "undo"
    assert "已撤销" in page.inner_text("#message")


def test_search_paging_readonly_context_and_screenshots(browser_page, team_server, team_world):
    page, base = browser_page, team_server
    _, _, db = team_world
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, base, "王芳")

    # paging with counts
    total = store.count_items(db, status="pending")
    assert total > 20
    assert f"第 1 / 2 页，共 {total} 条" in page.inner_text("#page-info")
    first_page = ids_on_page(page)
    assert len(first_page) == 20
    page.click("#next")
    page.wait_for_function("() => document.querySelector('#page-info').textContent.startsWith('第 2')")
    second_page = ids_on_page(page)
    assert second_page and not set(first_page) & set(second_page)
    page.click("#prev")
    page.wait_for_function("() => document.querySelector('#page-info').textContent.startsWith('第 1')")

    page.evaluate("window.scrollTo(0, 0)")
    cards_in_view = page.evaluate("[...document.querySelectorAll('article.item')].filter(e => e.getBoundingClientRect().top"
                                  " < window.innerHeight).length")
    assert cards_in_view >= 3, f"only {cards_in_view} cards in a 1366x768 screen"
    page.screenshot(path=str(_artifact("review-queue-zh-1366x768.png")))

    # the bidi override in a name stays inside its own isolate (search finds people by name too)
    page.fill("#f-q", "反转的昵称")
    name = page.locator(".user-name", has_text="反转的昵称").first
    assert name.evaluate("e => e.tagName + ' ' + getComputedStyle(e).unicodeBidi") == "BDI isolate"
    assert page.locator(".followers").first.evaluate("e => getComputedStyle(e).direction") == "ltr"

    # search in post and draft
    page.fill("#f-q", "蛋白粉")
    page.wait_for_function("() => { const c = [...document.querySelectorAll('article.item')];"
                           " return c.length > 0 && c.every(e => e.innerText.includes('蛋白粉')); }")
    found = ids_on_page(page)
    assert found and all("蛋白粉" in (store.item_detail(db, i)["post_text"] or "") + (store.item_detail(db, i)["text"] or "")
                         for i in found)

    # the card's context: thread (top comments first), their other posts, why, history
    card = page.locator("article.item", has_text="巧克力味").first
    card.locator("details.context summary").click()
    ctx = card.locator("details.context").inner_text()
    assert "热门评论" in ctx and ctx.index("摇摇杯") < ctx.index("香草味")
    assert "此人最近的帖子" in ctx and "推拉腿三分化" in ctx and "处理记录" in ctx and "生成" in ctx
    assert "层级" in card.locator(".why").inner_text()
    assert "💬" not in card.inner_text() and "评论" in card.locator(".post-meta").inner_text()
    card.screenshot(path=str(_artifact("review-card-thread-zh.png")))
    page.fill("#f-q", "")

    # a sent card is read-only
    page.select_option("#f-status", "sent")
    page.wait_for_selector("article.item.status-sent")
    sent_cards = page.locator("article.item")
    assert sent_cards.count() == 2
    assert page.locator("article.item button").count() == 0
    assert "只读" in sent_cards.first.inner_text()

    # follow suggestions are a to-do
    page.select_option("#f-status", "pending")
    page.select_option("#f-kind", "follow")
    page.wait_for_function("() => { const c = [...document.querySelectorAll('article.item')];"
                           " return c.length > 0 && c.every(e => e.querySelector('.btn-done')); }")
    assert page.locator("article.item textarea").count() == 0
    follow = ids_on_page(page)[0]
    page.locator(f"article.item[data-id='{follow}'] .btn-done").click()
    page.wait_for_selector(f"article.item[data-id='{follow}']", state="detached")
    assert store.get_item(db, follow).status == "done"

    # a phone
    page.select_option("#f-kind", "")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_selector("article.item")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 392, f"the page scrolls sideways on a phone ({width}px)"
    page.screenshot(path=str(_artifact("review-queue-phone.png")))


def test_report_screenshots_zh_and_en(browser_page, team_server):
    page, base = browser_page, team_server
    sign_in(page, base, "观察员")
    page.set_viewport_size({"width": 1366, "height": 900})
    for lang, heading in (("zh", "画像 报告"), ("en", "huaxiang report")):
        page.goto(f"{base}/report?lang={lang}")
        assert heading in page.inner_text("header")
        page.screenshot(path=str(_artifact(f"report-{lang}.png")), full_page=True)
