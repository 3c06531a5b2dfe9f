"""The HTML report: renders offline in headless Chromium without console
errors, images have content, empty data says so, strangers' text is escaped."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from matplotlib import image as mpimg

from conftest import ARTIFACTS
from storage.db import connect
from test_export import FIXED_NOW, HOSTILE_NAME, seed_fixture

MATH_BOMB = r"$\frac{1}{$ 50% off"


@pytest.fixture
def settings(settings):
    """These tests read the English labels; tests/test_review_ui.py covers the Chinese ones."""
    settings.ui.language = "en"
    return settings


def seed_report_extras(db) -> None:
    """What the analysis, the crawler and the sender add on top of the core rows."""
    conn = db
    users = conn.execute("SELECT u.id, m.audience_id FROM users u JOIN memberships m ON m.user_id = u.id ORDER BY u.id").fetchall()
    rng = np.random.default_rng(3)
    for uid, aid in users:
        cx = -2.0 if aid == 1 else 2.0
        conn.execute("INSERT INTO user_stats (user_id, run_id, audience_id, influence, x, y) VALUES (?, 2, ?, ?, ?, ?)",
                     (uid, aid, float(rng.random()), float(cx + rng.normal()), float(rng.normal())))
    for run, at in ((1, "2026-11-01T00:00:00+00:00"), (2, "2026-11-08T00:00:00+00:00"), (3, "2026-11-15T00:00:00+00:00")):
        conn.execute("INSERT OR IGNORE INTO analysis_runs (id, started_at, ended_at, status) VALUES (?, ?, ?, 'ok')", (run, at, at))
        for aid, size in ((1, 10 + run * 3), (2, 15 + run)):
            conn.execute("INSERT INTO audience_history (audience_id, run_id, size, at) VALUES (?, ?, ?, ?)", (aid, run, size, at))
    # A third audience whose name would be bad mathtext and an HTML injection.
    conn.execute("INSERT INTO audiences (id, auto_name, name, size, keywords, created_at) VALUES (3, 'x', ?, 1, ?, ?)",
                 (MATH_BOMB + "<img src=x onerror=alert(1)>", json.dumps([HOSTILE_NAME, MATH_BOMB]), FIXED_NOW.isoformat()))
    conn.execute("INSERT INTO memberships (user_id, audience_id, score, tier) VALUES (?, 3, 0.9, 'leader')", (users[0][0],))
    for i, (status, faults) in enumerate((("ok", {}), ("blocked", {"captcha": 2, "http_418": 1}), ("partial", {"payload": 3}))):
        at = (FIXED_NOW - timedelta(days=i)).isoformat()
        conn.execute("INSERT INTO crawl_runs (query, source, started_at, ended_at, status, requests, new_posts, errors, faults, error)"
                      " VALUES ('fitness-topic', 'weibo', ?, ?, ?, 10, 5, ?, ?, ?)",
                      (at, at, status, sum(faults.values()), json.dumps(faults), "blocked: <b>captcha</b>" if faults else None))
    conn.execute("INSERT INTO sources (name, platform, status, paused_until, pause_reason, consecutive_blocks)"
                 " VALUES ('weibo', 'weibo', 'paused', '2026-11-20T13:00:00+00:00', 'captcha <b>x</b>', 2)")
    conn.execute("INSERT INTO crawl_runs (query, source, started_at, status) VALUES ('reading-tag', 'weibo', ?, 'ok')",
                 (FIXED_NOW.isoformat(),))
    conn.execute("INSERT INTO post_queries (post_id, query) SELECT id, 'reading-tag' FROM posts WHERE text LIKE '%读书%'")
    sent = conn.execute("SELECT id FROM queue WHERE status = 'sent'").fetchall()
    for week in range(3):
        for k in range(4):
            at = (FIXED_NOW - timedelta(days=7 * week)).isoformat()
            cur = conn.execute(
                "INSERT INTO queue (kind, status, audience_id, template, variant, text, created_at, sent_at, dedupe_key)"
                " VALUES ('reply', 'sent', ?, 'hello', ?, 'hi', ?, ?, ?)", (1 + k % 2, k % 2, at, at, f"s{week}-{k}"))
            if (week + k) % 3:
                conn.execute("INSERT INTO outcomes (item_id, kind, remote_id, at) VALUES (?, 'reply', ?, ?)",
                             (cur.lastrowid, f"c{cur.lastrowid}", at))
    assert sent


@pytest.fixture
def full_db(tmp_path):
    db = connect(tmp_path / "huaxiang.db")
    seed_fixture(db)
    seed_report_extras(db)
    yield db
    db.close()


def _images(page_html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page_html)]


def _has_content(png: bytes) -> bool:
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    return pixels.shape[0] > 50 and pixels.shape[1] > 50 and float(pixels[..., :3].std()) > 0.02


def test_report_renders_offline_in_chromium(full_db, settings, tmp_path, browser_page):
    from bot.report import write_report

    path = write_report(full_db, settings, tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    page = browser_page
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    page.context.set_offline(True)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    # Nothing but the file itself and its inline images was requested.
    assert all(u == path.as_uri() or u.startswith("data:") for u in requests), requests
    assert errors == []
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight, e.dataset.chart])")
    assert len(images) >= 12
    assert all(ok and w > 100 and h > 50 for ok, w, h, _ in images), images
    slugs = {s for *_, s in images}
    assert {"audience-map", "audience-1-size", "audience-1-keywords", "audience-1-activity", "crawl-faults",
            "campaign-states", "campaign-response-rate"} <= slugs
    # strangers' text is shown as text, never run as markup
    assert page.locator("img[src=x]").count() == 0
    assert MATH_BOMB + "<img src=x onerror=alert(1)>" in page.inner_text("body")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    decoded = _images(html)
    assert len(decoded) == len(images)
    assert all(_has_content(png) for png in decoded)


def test_report_html_is_self_contained_and_escaped(full_db, settings):
    from bot.report import render_report

    html = render_report(full_db, settings)
    assert "<script" not in html.lower()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<bdi>" in html
    assert "Content-Security-Policy" in html and "default-src &#x27;none&#x27;" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "could not be drawn" not in html
    assert "健身人群" in html and "读书·书评" in html
    # the engagement area's table of response rates is shown
    assert "responded" in html
    # a paused source shows with its (escaped) reason
    assert "captcha &lt;b&gt;x&lt;/b&gt;" in html and "blocks in a row" in html


def test_empty_database_says_no_data_yet(db, settings, cli, tmp_path):
    connect(tmp_path / "empty.db").close()
    code, out, err = cli("--db", str(tmp_path / "empty.db"), "report", "-o", "r.html")
    assert code == 0, err
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.count("暂无数据") >= 5          # Chinese by default ([ui] language)
    assert "could not be drawn" not in html
    assert "data:image/png" not in html
    assert "wrote r.html (0 charts" in out


def test_png_dir(full_db, settings, tmp_path, cli):
    full_db.close()
    code, out, err = cli("report", "-o", "out/report.html", "--png", "charts")
    assert code == 0, err
    pngs = sorted((tmp_path / "charts").glob("*.png"))
    assert len(pngs) >= 12
    assert (tmp_path / "charts" / "audience-map.png").is_file()
    assert all(p.read_bytes().startswith(b"\x89PNG") and _has_content(p.read_bytes()) for p in pngs)
    assert f"wrote {len(pngs)} PNG files to charts" in out
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert len(_images(html)) == len(pngs)


def test_cjk_font_registered_and_draws_chinese(settings):
    """With a CJK font installed (fonts-wqy-microhei via scripts/install-system-deps.sh),
    Chinese labels draw real glyphs, not empty boxes."""
    from matplotlib.ft2font import FT2Font
    from matplotlib import font_manager

    from bot.report.fonts import cjk_font_family

    family = cjk_font_family()
    if family is None:
        pytest.skip("no CJK font on this machine (apt-get install fonts-wqy-microhei)")
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert FT2Font(path).get_char_index(ord("健")) != 0


def _no_system_cjk_font(monkeypatch, fonts) -> None:
    monkeypatch.setattr(fonts, "_cache", {})
    monkeypatch.setattr(fonts, "_known_family", lambda: None)
    monkeypatch.setattr(fonts, "_candidate_files", lambda: [])


def test_without_any_system_cjk_font_the_shipped_font_draws_chinese(monkeypatch, caplog):
    """Issue 16: on a machine without a CJK font the demo warned and its charts showed boxes.
    The package's own subset font now fills in: Chinese text draws with no missing glyph."""
    import warnings

    from matplotlib import rc_context
    from matplotlib.figure import Figure

    from bot.report import fonts

    _no_system_cjk_font(monkeypatch, fonts)
    with caplog.at_level(logging.WARNING, logger="bot.report.fonts"):
        rc = fonts.font_rc()
    assert "Huaxiang WQY Subset" in rc["font.sans-serif"]
    assert not any("no font with Chinese glyphs" in r.getMessage() for r in caplog.records)
    with rc_context(rc), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = Figure()
        fig.add_subplot().set_title("健身人群：特征关键词 画像 蛋白粉")
        fig.savefig(io.BytesIO(), format="png")
    assert not [w for w in caught if "missing" in str(w.message).lower()]


def test_missing_every_cjk_font_warns_and_still_renders(monkeypatch, caplog, db, settings):
    from bot.report import build_report, fonts

    seed_fixture(db, n_users=6)
    _no_system_cjk_font(monkeypatch, fonts)
    monkeypatch.setattr(fonts, "shipped_font_family", lambda: None)
    with caplog.at_level(logging.WARNING, logger="bot.report.fonts"):
        report = build_report(db, settings)
    assert any("no font with Chinese glyphs" in r.getMessage() and "fonts-wqy-microhei" in r.getMessage()
               for r in caplog.records)
    assert len(report.charts()) >= 6 and all(c.png.startswith(b"\x89PNG") for c in report.charts())
    assert fonts.font_rc()["font.sans-serif"] == ["DejaVu Sans"]


def test_configured_font_file_is_used(tmp_path, monkeypatch):
    from bot.report import fonts

    monkeypatch.setattr(fonts, "_cache", {})
    found = [p for p in fonts._candidate_files()]
    if not found:
        pytest.skip("no CJK font file on this machine")
    assert fonts.cjk_font_family(str(found[0])) is not None
    monkeypatch.setattr(fonts, "_cache", {})
    assert fonts.cjk_font_family(str(tmp_path / "missing.ttf")) is not None     # falls back to another


def test_report_sections_with_partial_data(db, settings):
    """Audiences but no analysis extras, crawl runs or queue: each part says what is missing."""
    from bot.report import build_report

    db.execute("INSERT INTO audiences (id, auto_name, size, created_at) VALUES (1, '健身', 0, ?)",
                    (FIXED_NOW.isoformat(),))
    report = build_report(db, settings)
    blocks = {b.title: b for s in report.sections for b in s.blocks}
    assert blocks["Audience map"].empty.startswith("no data yet")
    assert ("no data yet", "size over time, keywords, topics, tiers, activity") in blocks["健身"].facts
    assert blocks["Errors and blocks"].empty == "no data yet: no crawl runs"
    assert blocks["Actions by state"].empty.startswith("no data yet")


def test_heatmap_uses_local_time():
    from zoneinfo import ZoneInfo

    from bot.report.sections import _heatmap

    grid = _heatmap(["2026-11-16T23:30:00+00:00", "2026-11-17T07:30:00+08:00", "bad", None], ZoneInfo("Asia/Shanghai"))
    assert grid[1][7] == 2          # both are Tuesday 07:30 in Shanghai
    assert sum(map(sum, grid)) == 2


def test_chart_labels_are_not_mathtext():
    from bot.report.charts import label

    assert label(r"$\frac{1}{$") == r"\$\\frac{1}{\$"
    assert label("a\u202eb\x00c") == "abc"
    assert len(label("健" * 100)) == 24


def test_map_sample_keeps_every_audience(db):
    """Beyond the point limit the map samples users; a regular id pattern must not hide an audience."""
    from storage.reporting import map_points

    conn = db
    for a in range(1, 5):
        conn.execute("INSERT INTO audiences (id, auto_name, created_at) VALUES (?, ?, ?)", (a, f"a{a}", FIXED_NOW.isoformat()))
    for i in range(1, 401):
        conn.execute("INSERT INTO users (id, platform, uid, first_seen) VALUES (?, 'weibo', ?, ?)", (i, str(i), FIXED_NOW.isoformat()))
        conn.execute("INSERT INTO user_stats (user_id, audience_id, influence, x, y) VALUES (?, ?, 0.5, ?, 0)",
                     (i, (i - 1) % 4 + 1, float(i)))
    points = map_points(db, limit=40)
    assert len(points) == 40
    counts = {a: sum(p["audience_id"] == a for p in points) for a in range(1, 5)}
    assert all(4 <= n <= 18 for n in counts.values()), counts
    assert points == map_points(db, limit=40)


# -- issue 16 findings ------------------------------------------------------------------------------

def _block(report, title):
    return next(b for s in report.sections for b in s.blocks if b.title == title)


def test_tag_query_counts_the_people_it_found_and_their_posts(db, settings):
    """A tag query lists people, not posts; the report showed it with 0 posts / 0 users
    where the crawl had reported what it stored."""
    from bot.report import build_report
    from storage import reporting

    seed_fixture(db, n_users=10)
    db.execute("INSERT INTO user_queries (platform, uid, query) SELECT platform, uid, 'fitness-tag' FROM users"
                    " WHERE name LIKE '健身%'")
    people = db.execute("SELECT COUNT(*) FROM users WHERE name LIKE '健身%'").fetchone()[0]
    their_posts = db.execute("SELECT COUNT(*) FROM posts p JOIN users u ON u.id = p.user_id"
                                  " WHERE u.name LIKE '健身%'").fetchone()[0]
    row = next(r for r in reporting.crawl_by_query(db) if r["query"] == "fitness-tag")
    assert (row["posts"], row["users"]) == (their_posts, people) and people > 0
    table = _block(build_report(db, settings), "Found per query").tables[0]
    assert [r for r in table.rows if r[0] == "fitness-tag"][0][1:3] == [their_posts, people]


def test_keyword_weights_are_weights_not_ranks_and_junk_is_left_out(db, settings):
    from bot.report.sections import _keywords
    from storage import reporting

    seed_fixture(db, n_users=10)
    db.execute("UPDATE audiences SET keywords = ? WHERE id = 2",
                    (json.dumps(["读书", "明显", "好书", "无数次", "一个月", "这家", "推荐"], ensure_ascii=False),))
    aud = next(a for a in reporting.list_audiences(db) if a["id"] == 2)
    words, label = _keywords(db, aud, "en")
    names = [w for w, _ in words]
    assert not {"明显", "无数次", "一个月", "这家"} & set(names)
    assert set(names) == {"读书", "好书", "推荐"}
    weights = [v for _, v in words]
    assert all(0 < v <= 1 for v in weights) and weights != [3.0, 2.0, 1.0]     # shares of posts, not 3-2-1 ranks
    assert "share" in label


def test_nlp_keywords_leave_out_quantities_and_demonstratives():
    import numpy as np
    import scipy.sparse as sp

    from nlp.keywords import audience_keywords

    terms = ["健身", "一个月", "无数次", "这家", "明显", "增肌"]
    X = sp.csr_matrix(np.array([[5, 9, 9, 9, 9, 3], [0, 1, 1, 1, 1, 0]]))
    top = [w for w, _ in audience_keywords(X, np.array([0, 1]), 2, terms, n=6)[0]]
    assert top == ["健身", "增肌"]


def test_growth_is_numbers_until_there_is_a_history(db, settings):
    from bot.report import build_report

    seed_fixture(db, n_users=10)
    db.execute("INSERT INTO audience_history (audience_id, run_id, size, at) VALUES (1, 1, 5, '2026-11-01T00:00:00+00:00')")
    report = build_report(db, settings)
    block = _block(report, "健身人群")
    assert "audience-1-size" not in {c.slug for c in block.charts}          # one dot on day one is not a chart
    assert dict(block.facts)["size (per analysis)"] == "5"
    for run in (2, 3):
        db.execute("INSERT INTO audience_history (audience_id, run_id, size, at) VALUES (1, ?, ?, ?)",
                        (run, 5 + run, f"2026-11-0{run}T00:00:00+00:00"))
    assert "audience-1-size" in {c.slug for c in _block(build_report(db, settings), "健身人群").charts}


def test_a_day_of_crawling_is_a_table_of_numbers_not_a_dot(db, settings):
    """The crawl's per-day chart was one dot per query on day one; until there
    are two days the report shows the day's numbers."""
    from bot.report import build_report

    seed_fixture(db, n_users=10)
    db.execute("UPDATE posts SET first_seen = '2026-11-01T02:00:00+00:00'")
    db.execute("UPDATE users SET first_seen = '2026-11-01T02:00:00+00:00'")
    report = build_report(db, settings, lang="en")
    crawl = next(s for s in report.sections if s.id == "crawl")
    per_day = next(b for b in crawl.blocks if b.title == "Found per day")
    assert not per_day.charts and per_day.tables[0].rows[0][0] == "2026-11-01"
    assert per_day.tables[0].rows[0][1] == db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
    assert all("days" not in c.slug for b in crawl.blocks for c in b.charts)
    db.execute("UPDATE posts SET first_seen = '2026-11-02T02:00:00+00:00' WHERE id % 2 = 0")
    crawl = next(s for s in build_report(db, settings, lang="en").sections if s.id == "crawl")
    assert "crawl-per-day" in {c.slug for b in crawl.blocks for c in b.charts}


def test_each_audience_names_the_targets_it_serves_and_its_prospects(db, settings):
    from bot.report import build_report

    seed_fixture(db, n_users=10)
    db.execute("UPDATE audiences SET target = '健身爱好者', target_score = 0.8 WHERE id = 1")
    db.execute("INSERT INTO user_relevance (user_id, target, score) SELECT m.user_id, '健身爱好者', 0.7"
                    " FROM memberships m WHERE m.audience_id = 1")
    facts = dict(_block(build_report(db, settings), "健身人群").facts)
    assert facts["targets served"].startswith("健身爱好者 (0.70,")
    leaders, engaged, potential = (int(x) for x in facts["prospects (leaders / engaged / potential)"].split(" / "))
    assert leaders + engaged + potential == db.execute(
        "SELECT COUNT(*) FROM memberships WHERE audience_id = 1").fetchone()[0]


def test_report_is_chinese_by_default_with_times_in_the_campaign_zone(db):
    from config import Settings

    from bot.report import render_report

    seed_fixture(db, n_users=10)
    db.execute("INSERT INTO crawl_runs (query, source, started_at, status) VALUES ('q', 'weibo',"
                    " '2026-11-20T23:30:00+00:00', 'ok')")
    html = render_report(db, Settings())            # [ui] language zh, Asia/Shanghai
    assert '<html lang="zh-CN">' in html and "概览" in html and "各查询发现" in html and "Overview" not in html
    assert "2026-11-21 07:30" in html and "2026-11-20T23:30" not in html
    english = render_report(db, Settings(), lang="en")
    assert "Overview" in english and "概览" not in english


def test_days_in_charts_are_the_campaign_s_calendar_days(db):
    from storage import reporting

    seed_fixture(db, n_users=4)
    db.execute("UPDATE posts SET first_seen = '2026-11-20T20:00:00+00:00'")      # 04:00 next day in Shanghai
    db.execute("UPDATE users SET first_seen = '2026-11-20T10:00:00+00:00'")
    days = {r["day"]: r for r in reporting.crawl_by_day(db, offset="+480 minutes")}
    assert days["2026-11-21"]["posts"] > 0 and days["2026-11-20"]["users"] > 0 and days["2026-11-20"]["posts"] == 0
