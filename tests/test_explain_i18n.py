"""What a reviewer reads about an item (the score explanation, the reason, the
draft's reasoning, the user's relevance) is written at display time from
stored facts, in Chinese by default and English with ``[ui] language = "en"``;
rows planned before the facts existed still show their stored English text."""

from __future__ import annotations

import csv
import json
import random

import pytest
from fastapi.testclient import TestClient

from bot.commands.queue import _rendered
from bot.engage import explain
from bot.report.exports import export_prospects, export_queue
from bot.engage.planner import run_plan
from bot.engage.review.app import create_app
from bot.engage.review.auth import load_or_create_token
from config import parse_settings
from storage import engagement as store
from storage.db import connect, transaction
from test_planner_targets import LIBRARY, SCORES, TEXTS
from test_queue_world import NOW, build_world

REL_FACTS = {"score": 0.98, "rank": 1, "n": 190, "posts": ["今天深蹲又突破了，\n鸡胸肉也吃够了"],
             "terms": {"深蹲": 3, "鸡胸肉": 1}, "seeds": ["深蹲"]}


def campaign(lang: str | None = None):
    raw = {"audiences": [{"name": "健身人群", "seeds": ["健身", "深蹲"]}, {"name": "新手妈妈", "seeds": ["辅食"]}],
           "engagement": {"quiet_hours": "", "min_spacing_s": 0, "spacing_jitter_s": 0, "daily_cap": 1000,
                          "hourly_cap": 1000, "follow_suggestions": True, "min_relevance": 0.3, "library": LIBRARY}}
    if lang:
        raw["ui"] = {"language": lang}
    return parse_settings(raw)


def _relevance(db) -> None:
    """Relevance rows as the analysis now writes them: the English line and its facts."""
    with transaction(db):
        for uid, (fit, mom) in SCORES.items():
            user_id = db.execute("SELECT id FROM users WHERE uid = ?", (uid,)).fetchone()[0]
            for target, score in (("健身人群", fit), ("新手妈妈", mom)):
                facts = {**REL_FACTS, "score": score}
                db.execute("INSERT INTO user_relevance (user_id, target, score, explanation, facts)"
                                " VALUES (?, ?, ?, ?, ?)", (user_id, target, score, "meaning (English line)",
                                                            json.dumps(facts, ensure_ascii=False)))


@pytest.fixture
def planned(tmp_path):
    path = tmp_path / "x.db"
    db = connect(path)
    build_world(db, texts=TEXTS)
    _relevance(db)
    run_plan(db, campaign(), NOW, rng=random.Random(0))
    yield path, db
    db.close()


def _api_items(path, settings) -> list[dict]:
    c = TestClient(create_app(path, settings, load_or_create_token(path)))
    c.get(f"/?token={load_or_create_token(path)}")
    r = c.get("/api/items")
    assert r.status_code == 200
    return r.json()


def test_planner_stores_facts_beside_the_english_line(planned):
    _, db = planned
    row = store.queue_row(db, store.list_items(db, kind="reply")[0]["id"])
    facts = json.loads(row["explanation_facts"])
    assert facts["audience"] and facts["relevance_facts"]["rank"] == 1 and facts["draft"]["reason"]["post_kind"]
    assert row["explanation"] == explain.explanation(facts, "en") and row["explanation"].startswith("Score ")


def test_card_explanation_and_draft_reasoning_follow_the_language(planned):
    path, _ = planned
    zh = [i for i in _api_items(path, campaign()) if i["kind"] == "reply"]
    assert zh
    for it in zh:
        why = it["context"]["why"]
        assert why["explanation"].startswith("得分 ") and "粉丝" in why["explanation"] and "Score" not in why["explanation"]
        assert "语义相关度 0." in why["explanation"] and "（第 1/190 名）" in why["explanation"]
        assert it["explanation"] == why["explanation"]
        assert " in " not in it["reason"] and it["reason"].endswith(("意见领袖", "活跃潜客", "潜在用户"))
        assert "帖" in it["context"]["draft_why"] and " post" not in it["context"]["draft_why"]
        assert "语义相关度" in why["relevance_explanation"]
    follow = [i for i in _api_items(path, campaign()) if i["kind"] == "follow"]
    assert follow and "意见领袖" in follow[0]["reason"] and "关注不会由机器人发出" in follow[0]["explanation"]
    en = [i for i in _api_items(path, campaign("en")) if i["kind"] == "reply"]
    for it in en:
        why = it["context"]["why"]
        assert why["explanation"].startswith("Score ") and "followers" in why["explanation"]
        assert "meaning 0." in why["explanation"] and "(rank 1/190)" in why["explanation"]
        assert " post" in it["context"]["draft_why"] and "帖" not in it["context"]["draft_why"].replace("帖子", "")


def test_old_rows_with_only_english_text_still_show_it(planned):
    path, db = planned
    item = store.list_items(db, kind="reply")[0]["id"]
    with transaction(db):
        db.execute("UPDATE queue SET explanation_facts = NULL, explanation = 'Score 0.50: an old line',"
                        " reason = 'engaged in 健身人群' WHERE id = ?", (item,))
    card = next(i for i in _api_items(path, campaign()) if i["id"] == item)
    assert card["context"]["why"]["explanation"] == "Score 0.50: an old line"
    assert card["reason"] == "engaged in 健身人群"
    row = _rendered(store.item_detail(db, item), "zh")
    assert row["explanation"] == "Score 0.50: an old line"


def _csv(path) -> list[dict]:
    with open(path, encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_queue_export_explanation_follows_the_language(planned, tmp_path):
    from openpyxl import load_workbook

    _, db = planned
    export_queue(db, campaign(), "csv", tmp_path / "zh.csv")
    rows = [r for r in _csv(tmp_path / "zh.csv") if r["kind"] != "follow"]
    assert rows and all(r["explanation"].startswith("得分 ") and "帖" in r["draft_why"] for r in rows)
    assert all("的" in r["reason"] and " in " not in r["reason"] for r in rows)
    export_queue(db, campaign("en"), "csv", tmp_path / "en.csv")
    rows = [r for r in _csv(tmp_path / "en.csv") if r["kind"] != "follow"]
    assert rows and all(r["explanation"].startswith("Score ") and " post" in r["draft_why"] for r in rows)
    export_queue(db, campaign(), "xlsx", tmp_path / "zh.xlsx")
    ws = load_workbook(tmp_path / "zh.xlsx").active
    header = [c.value for c in ws[1]]
    col = next(i for i, c in enumerate(ws[1]) if "说明" in str(c.value) or c.value == "explanation")
    values = [r[col].value for r in ws.iter_rows(min_row=2) if r[col].value]
    assert values and all(v.startswith("得分 ") for v in values), header


def test_prospects_export_why_follows_the_language(planned, tmp_path):
    _, db = planned
    export_prospects(db, campaign(), "健身人群", "csv", tmp_path / "p.csv")
    rows = _csv(tmp_path / "p.csv")
    assert rows and all(r["why"].startswith("语义相关度 ") and "相关词：深蹲×3（种子词）" in r["why"] for r in rows)
    export_prospects(db, campaign("en"), "健身人群", "csv", tmp_path / "p.csv")
    rows = _csv(tmp_path / "p.csv")
    assert rows and all(r["why"].startswith("meaning ") and "terms: 深蹲×3 (seed)" in r["why"] for r in rows)


def test_relevance_without_facts_shows_the_stored_line():
    assert explain.relevance(None, "zh", "健身×4 in 4/9 posts") == "健身×4 in 4/9 posts"
    assert explain.relevance({"score": 0.5, "terms": {}, "posts": []}, "zh") == "语义相关度 0.50"
    assert "「今天深蹲又突破了， 鸡胸肉也吃够了」" in explain.relevance(REL_FACTS, "zh")


def test_draft_why_names_kind_quotes_library_and_fallback():
    reason = {"post_kind": "question", "phrases": ["手冲", "参数"], "topics": ["咖啡"], "library": {"id": "grind", "by": "vector"},
              "drafter": "llm", "model": "qwen", "fallback": "timeout"}
    assert explain.draft_why(reason, "zh") == ("提问（求推荐/提问）帖；引用 手冲、参数；话题 #咖啡#；素材 grind（按语义匹配）；"
                                               "大模型 qwen；大模型未用上，改用后备：timeout")
    assert explain.draft_why(reason, "en") == ("question (求推荐/提问) post; quotes 手冲, 参数; topics #咖啡#; library grind "
                                               "(by vector); llm qwen; LLM fell back: timeout")


def test_queue_show_and_list_follow_the_language(planned, cli, tmp_path):
    path, db = planned
    item = store.list_items(db, kind="reply")[0]["id"]
    (tmp_path / "en.toml").write_text('[ui]\nlanguage = "en"\n', encoding="utf-8")
    code, out, err = cli("--db", path, "queue", "show", item)
    assert code == 0, err
    flat = out.replace("\n", "")
    assert "why:     得分 " in flat and "粉丝" in flat and "Score" not in flat
    assert "drafted: " in flat and "帖" in flat.split("drafted: ")[1] and "post_kind=" not in flat
    code, out, err = cli("--db", path, "--config", tmp_path / "en.toml", "queue", "show", item)
    assert code == 0 and "why:     Score " in out and "followers;" in out.replace("\n", " "), err
    code, out, err = cli("--db", path, "queue", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and all(r["explanation"].startswith("得分 ") for r in rows if r["kind"] != "follow")
    code, out, err = cli("--db", path, "--config", tmp_path / "en.toml", "queue", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(r["explanation"].startswith("Score ") and " post" in r["draft_why"] for r in rows if r["kind"] != "follow")


@pytest.mark.parametrize("lang, words", [("zh", ("得分 ", "草稿为何这样写", "语义相关度")),
                                         ("en", ("Score ", "Why the draft reads this way", "meaning "))])
def test_card_in_chromium_reads_in_the_language(browser_page, planned, lang, words):
    import socket
    import threading
    import time

    import uvicorn

    from conftest import ARTIFACTS

    path, _ = planned
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(path, campaign(lang if lang == "en" else None), load_or_create_token(path),
                     allowed_hosts={"127.0.0.1"})
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        page = browser_page
        page.set_viewport_size({"width": 1366, "height": 768})
        page.goto(f"http://127.0.0.1:{port}/?token={load_or_create_token(path)}")
        card = page.locator("article.item:has(textarea.draft)").first
        card.wait_for()
        assert card.locator(".why .explanation").inner_text().startswith(words[0])
        card.locator("details.context summary").click()
        ctx = card.locator("details.context").inner_text()
        assert words[1] in ctx and words[2] in card.locator(".why").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        card.screenshot(path=str(ARTIFACTS / f"review-card-explanation-{lang}.png"))
    finally:
        srv.should_exit = True
        th.join(timeout=5)
