"""Exports: CSV/XLSX round trips with Chinese text, bare uids, pseudonyms,
sidecars, filters, hostile text and secrets."""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from openpyxl import load_workbook

from storage.db import transaction
from storage.posts import upsert_posts
from storage.records import Post, User

HOSTILE_NAME = "<script>alert('x')</script>\u202egnp.exe 🏋️‍♀️ =HYPERLINK(\"http://evil\")"
HUGE_BIO = "健身" * 50_000 + "\u202e end"      # 100,000 characters
SECRET_COOKIE = "SUB=_2A25very-secret-cookie-value-123456"

FIXED_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def seed_fixture(db, n_users: int = 40, seed: int = 7) -> dict:
    """Users, posts, two audiences with tiers, an analysis run, queue items and
    audit entries, written straight into the core tables."""
    rng = random.Random(seed)
    posts = []
    users = []
    for i in range(n_users):
        uid = f"{1000000 + i}"
        name = f"健身达人{i}号" if i % 2 == 0 else f"读书会成员{i}"
        bio = "每天撸铁，增肌减脂" if i % 2 == 0 else "爱读书，写书评"
        if i == 3:
            name, bio = HOSTILE_NAME, HUGE_BIO
        user = User(platform="weibo", uid=uid, name=name, bio=bio, tags=["健身", "生活"] if i % 2 == 0 else ["阅读"],
                    followers=rng.randint(10, 100_000), following=rng.randint(1, 500), posts_count=rng.randint(1, 900),
                    verified=i % 5 == 0, gender="f" if i % 3 else "m", location="北京" if i % 2 else "上海",
                    full_profile=True)
        users.append(user)
        for j in range(4):
            when = FIXED_NOW - timedelta(days=(i % 10) + j * 3, hours=rng.randint(0, 23))
            text = ("今天健身打卡，增肌第%d天 #健身打卡#" % j) if i % 2 == 0 else ("读完一本好书，推荐给大家 #读书#")
            posts.append(Post(platform="weibo", pid=f"p{i}-{j}", uid=uid, text=text,
                              created_at=when.astimezone(timezone(timedelta(hours=8))).isoformat(),
                              topics=["健身打卡"] if i % 2 == 0 else ["读书"], likes=rng.randint(0, 50),
                              author=user))
    with transaction(db):
        upsert_posts(db, posts, query="fitness-topic", run_id=None)
    conn = db
    now = FIXED_NOW.isoformat()
    conn.execute("INSERT INTO analysis_runs (id, started_at, ended_at, status, k, n_users, n_posts) VALUES (1, ?, ?, 'ok', 2, ?, ?)",
                 (now, now, n_users, len(posts)))
    conn.execute(
        "INSERT INTO audiences (id, auto_name, name, size, share, keywords, topics, influencers, tier_counts, created_run,"
        " updated_run, created_at) VALUES (1, '健身·增肌', '健身人群', ?, 0.5, ?, ?, ?, '{}', 1, 1, ?)",
        (n_users // 2, json.dumps([["健身", 3.2], ["增肌", 2.5], ["撸铁", 1.1]], ensure_ascii=False),
         json.dumps(["健身打卡"], ensure_ascii=False), json.dumps([{"uid": "1000000", "name": "健身达人0号"}], ensure_ascii=False), now))
    conn.execute(
        "INSERT INTO audiences (id, auto_name, name, size, share, keywords, topics, created_run, updated_run, created_at)"
        " VALUES (2, '读书·书评', NULL, ?, 0.5, ?, ?, 1, 1, ?)",
        (n_users - n_users // 2, json.dumps(["读书", "好书", "推荐"], ensure_ascii=False),
         json.dumps(["读书"], ensure_ascii=False), now))
    rows = conn.execute("SELECT id, uid FROM users ORDER BY uid").fetchall()
    for k, (row_id, uid) in enumerate(rows):
        i = int(uid) - 1000000
        aud = 1 if i % 2 == 0 or i == 3 else 2
        tier = ("leader", "engaged", "potential")[k % 3]
        conn.execute("INSERT INTO memberships (user_id, audience_id, score, tier, run_id) VALUES (?, ?, ?, ?, 1)",
                     (row_id, aud, round(0.3 + 0.7 * ((k * 37) % 100) / 100, 3), tier))
    post_row = conn.execute("SELECT id, user_id FROM posts WHERE pid = 'p0-0'").fetchone()
    for q, status in enumerate(("pending", "approved", "sent", "rejected")):
        conn.execute(
            "INSERT INTO queue (kind, status, platform, post_id, target_user_id, audience_id, template, variant, text, score,"
            " reason, dedupe_key, created_at) VALUES ('reply', ?, 'weibo', ?, ?, 1, 'hello', ?, ?, 0.8, ?, ?, ?)",
            (status, post_row[0], post_row[1], q % 2, f"你好{HOSTILE_NAME}，一起健身吧", f"score 0.8 cookie={SECRET_COOKIE}",
             f"k{q}", now))
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, item_id, from_status, to_status, text_before, text_after, detail)"
            " VALUES (?, '王小明', 'approve', ?, 'pending', ?, NULL, ?, ?)",
            (now, q + 1, status, "你好，一起健身吧", json.dumps({"note": "ok", "cookie": SECRET_COOKIE, "token": "abc",
                                                           "error": f"send failed {SECRET_COOKIE}"})))
    return {"users": rows, "names": [u.name for u in users], "uids": [u.uid for u in users]}


@pytest.fixture
def seeded(tmp_path, cli):
    from storage.db import connect

    db = connect(tmp_path / "huaxiang.db")
    info = seed_fixture(db)
    db.close()
    return info


def test_csv_round_trip_chinese_with_bom(seeded, cli, tmp_path):
    code, out, err = cli("export", "audience", "健身人群", "--format", "csv", "-o", "fit.csv")
    assert code == 0, err
    raw = (tmp_path / "fit.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(tmp_path / "fit.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 21
    assert list(rows[0])[:9] == ["platform", "user_id", "name", "tier", "membership_score", "relevance",
                                 "relevance_target", "influence", "top_keywords"]
    by_uid = {r["user_id"]: r for r in rows}
    assert by_uid["1000000"]["name"] == "健身达人0号"
    assert by_uid["1000000"]["location"] == "上海"
    assert "健身" in by_uid["1000000"]["top_keywords"]
    assert by_uid["1000000"]["profile_url"] == "https://weibo.com/u/1000000"
    # hostile text survives byte for byte: HTML, bidi override, emoji, 100 KB bio, formula-looking text
    assert by_uid["1000003"]["name"] == HOSTILE_NAME
    assert by_uid["1000003"]["bio"] == HUGE_BIO
    scores = [float(r["membership_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)


def test_xlsx_round_trip_header_frozen_widths(seeded, cli, tmp_path):
    code, out, err = cli("export", "audience", "1", "--format", "xlsx", "-o", "fit.xlsx")
    assert code == 0, err
    wb = load_workbook(tmp_path / "fit.xlsx")
    ws = wb.active
    assert ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    assert header[:3] == ["平台", "用户编号", "昵称"]          # Chinese headers by default ([ui] language)
    assert ws["A1"].font.b
    values = {row[1]: row for row in ws.iter_rows(min_row=2, values_only=True)}
    assert len(values) == 21
    assert values["1000000"][2] == "健身达人0号"
    # a formula-looking name stays a string, not a formula
    hostile = values["1000003"][2]
    assert hostile == HOSTILE_NAME
    cell = next(c for c in ws["C"] if c.value == HOSTILE_NAME)
    assert cell.data_type == "s"
    widths = {k: d.width for k, d in ws.column_dimensions.items()}
    assert 8 <= widths["C"] <= 60 and widths["C"] > widths["A"] - 1
    # the 100 KB bio exceeds Excel's cell limit: cut and reported in the sidecar
    meta = json.loads((tmp_path / "fit.xlsx.meta.json").read_text(encoding="utf-8"))
    assert any("32767" in n for n in meta["notes"])


def test_xlsx_links_are_clickable_and_dates_are_dates(seeded, cli, tmp_path):
    """Issue 16: links were plain text and dates were text in the campaign's spreadsheets."""
    from datetime import datetime

    code, out, err = cli("export", "audience", "1", "--format", "xlsx", "-o", "links.xlsx")
    assert code == 0, err
    ws = load_workbook(tmp_path / "links.xlsx").active
    header = [c.value for c in ws[1]]
    url_col = header.index("主页链接") + 1
    seen_col = header.index("首次发现") + 1
    links = [ws.cell(row=r, column=url_col) for r in range(2, ws.max_row + 1)]
    with_url = [c for c in links if c.value]
    assert with_url and all(c.hyperlink is not None and c.hyperlink.target == c.value for c in with_url)
    assert all(c.value.startswith(("http://", "https://")) for c in with_url)
    dates = [ws.cell(row=r, column=seen_col) for r in range(2, ws.max_row + 1)]
    assert dates and all(isinstance(c.value, datetime) and c.is_date for c in dates if c.value is not None)
    assert any(c.value is not None for c in dates)


def test_xlsx_headers_in_english_on_the_switch(seeded, cli, tmp_path):
    (tmp_path / "huaxiang.toml").write_text('[ui]\nlanguage = "en"\n', encoding="utf-8")
    code, out, err = cli("export", "audience", "1", "--format", "xlsx", "-o", "en.xlsx")
    assert code == 0, err
    assert [c.value for c in load_workbook(tmp_path / "en.xlsx").active[1]][:3] == ["platform", "user_id", "name"]


def test_uids_one_id_per_line_and_nothing_else(seeded, cli, tmp_path):
    code, out, err = cli("export", "audience", "读书·书评", "--format", "uids", "-o", "ids.txt")
    assert code == 0, err
    text = (tmp_path / "ids.txt").read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[-1] == ""           # file ends with a newline, no trailing blank line
    ids = lines[:-1]
    assert len(ids) == 19 and len(set(ids)) == 19
    assert all(i.isdigit() for i in ids)
    assert not text.startswith("\ufeff")


def test_filters_tier_relevance_limit_active_since(seeded, cli, tmp_path):
    code, _, err = cli("export", "audience", "1", "--format", "jsonl", "-o", "a.jsonl", "--tier", "leader,engaged",
                       "--min-relevance", "0.5", "--limit", "5")
    assert code == 0, err
    rows = [json.loads(l) for l in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    assert 0 < len(rows) <= 5
    assert all(r["tier"] in ("leader", "engaged") and r["membership_score"] >= 0.5 for r in rows)
    assert isinstance(rows[0]["tags"], list)
    meta = json.loads((tmp_path / "a.jsonl.meta.json").read_text(encoding="utf-8"))
    assert meta["filters"] == {"tiers": ["leader", "engaged"], "min_relevance": 0.5, "active_since": None, "limit": 5}
    assert meta["analysis_run"]["id"] == 1 and meta["audience"]["name"] == "健身人群"
    assert meta["rows"] == len(rows) and len(meta["sha256"]) == 64

    # last_seen is stored in +08:00; the cut-off in UTC must compare correctly
    code, _, err = cli("export", "audience", "1", "--format", "uids", "-o", "recent.txt",
                       "--active-since", "2026-11-17T00:00:00+00:00")
    assert code == 0, err
    recent = (tmp_path / "recent.txt").read_text().split()
    from storage.db import connect
    db = connect(tmp_path / "huaxiang.db")
    expected = {r[0] for r in db.execute(
        "SELECT u.uid FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.audience_id = 1")
        if True} & {r[0] for r in db.execute("SELECT uid FROM users WHERE julianday(last_seen) >= julianday('2026-11-17T00:00:00Z')")}
    db.close()
    assert set(recent) == expected and 0 < len(recent) < 21


def test_pseudonymised_exports_hold_no_id_or_name(seeded, cli, tmp_path, monkeypatch):
    monkeypatch.delenv("HUAXIANG_PSEUDONYM_KEY", raising=False)
    for fmt in ("csv", "xlsx", "jsonl", "uids"):
        code, _, err = cli("export", "audience", "1", "--format", fmt, "-o", f"p.{fmt}", "--pseudonymise")
        assert code == 0, err
    code, _, err = cli("export", "memberships", "-o", "m.csv", "--pseudonymise")
    assert code == 0, err
    key_file = tmp_path / "huaxiang.db.pseudonym-key"
    key = key_file.read_text().strip()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    texts = {}
    for name in ("p.csv", "p.jsonl", "p.uids", "m.csv", "p.csv.meta.json", "m.csv.meta.json"):
        texts[name] = (tmp_path / name).read_text(encoding="utf-8-sig")
    wb = load_workbook(tmp_path / "p.xlsx")
    texts["p.xlsx"] = "\n".join(str(v) for row in wb.active.iter_rows(values_only=True) for v in row)
    for name, text in texts.items():
        for uid in seeded["uids"]:
            assert uid not in text, (name, uid)
        for person in seeded["names"]:
            assert person not in text, (name, person)
        assert key not in text
    ids = texts["p.uids"].split()
    assert len(ids) == 21 and all(i.startswith("anon-") for i in ids)
    # the same user gets the same pseudonym in every export made with the same key
    with open(tmp_path / "m.csv", encoding="utf-8-sig", newline="") as fh:
        members = {r["user_id"] for r in csv.DictReader(fh) if r["audience_id"] == "1"}
    assert set(ids) == members
    # a key from the environment gives different pseudonyms
    monkeypatch.setenv("HUAXIANG_PSEUDONYM_KEY", "another-key-0123456789")
    code, _, err = cli("export", "audience", "1", "--format", "uids", "-o", "q.uids", "--pseudonymise")
    assert code == 0, err
    assert set((tmp_path / "q.uids").read_text().split()).isdisjoint(ids)
    meta = json.loads((tmp_path / "q.uids.meta.json").read_text(encoding="utf-8"))
    assert meta["pseudonymised"] is True and "HUAXIANG_PSEUDONYM_KEY" in meta["pseudonym_key_source"]
    assert "another-key-0123456789" not in json.dumps(meta)


def test_memberships_contract(seeded, cli, tmp_path):
    code, out, err = cli("export", "memberships", "-o", "mem.csv")
    assert code == 0, err
    raw = (tmp_path / "mem.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfuser_id,audience_id,membership_score\r\n")
    with open(tmp_path / "mem.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40
    assert {r["user_id"] for r in rows} == set(seeded["uids"])
    assert all(0 < float(r["membership_score"]) <= 1 for r in rows)
    assert "wrote 40 rows to mem.csv" in out


def test_default_file_names_and_sidecar(seeded, cli, tmp_path):
    code, out, err = cli("export", "memberships")
    assert code == 0, err
    assert (tmp_path / "memberships.csv").is_file() and (tmp_path / "memberships.csv.meta.json").is_file()
    code, out, err = cli("export", "audience", "2", "--format", "uids")
    assert code == 0, err
    meta = json.loads((tmp_path / "audience-2.txt.meta.json").read_text(encoding="utf-8"))
    assert meta["what"] == "audience" and meta["format"] == "uids" and meta["rows"] == 19
    assert meta["audience"]["name"] == "读书·书评"
    from storage.db import connect
    db = connect(tmp_path / "huaxiang.db")
    logged = db.execute("SELECT what, format, rows FROM export_log ORDER BY id").fetchall()
    db.close()
    assert logged == [("memberships", "csv", 40), ("audience", "uids", 19)]


def test_queue_and_actions_keep_secrets_out(seeded, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HUAXIANG_WEIBO_COOKIE", SECRET_COOKIE)
    (tmp_path / "huaxiang.toml").write_text(
        '[[sources]]\nname = "weibo"\nplatform = "weibo"\ncookie_env = "HUAXIANG_WEIBO_COOKIE"\n', encoding="utf-8")
    from storage.db import connect
    db = connect(tmp_path / "huaxiang.db")
    db.execute("UPDATE queue SET last_error = ? WHERE id = 1",
                    (f"HTTP 403 for https://api.weibo.com/2/comments/create.json?access_token=tok123456789 {SECRET_COOKIE}",))
    db.close()
    for what, fmt in (("queue", "csv"), ("queue", "xlsx"), ("actions", "jsonl"), ("actions", "csv")):
        code, out, err = cli("export", what, "--format", fmt, "-o", f"{what}.{fmt}")
        assert code == 0, err
    queue = list(csv.DictReader(open(tmp_path / "queue.csv", encoding="utf-8-sig", newline="")))
    assert len(queue) == 4
    assert queue[0]["draft"] == f"你好{HOSTILE_NAME}，一起健身吧"
    assert queue[0]["target_uid"] == "1000000" and queue[0]["post_text"].startswith("今天健身打卡")
    failed = next(r for r in queue if r["id"] == "1")
    assert "access_token=***" in failed["last_error"] and "tok123456789" not in failed["last_error"]
    actions = [json.loads(l) for l in (tmp_path / "actions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(actions) == 4 and actions[0]["actor"] == "王小明"
    assert actions[0]["detail"]["cookie"] == "***" and actions[0]["detail"]["token"] == "***"
    assert actions[0]["detail"]["note"] == "ok"
    wb = load_workbook(tmp_path / "queue.xlsx")
    xlsx_text = "\n".join(str(v) for row in wb.active.iter_rows(values_only=True) for v in row)
    for name in ("queue.csv", "actions.jsonl", "actions.csv"):
        assert "very-secret-cookie" not in (tmp_path / name).read_text(encoding="utf-8-sig"), name
    assert "very-secret-cookie" not in xlsx_text
    code, out, err = cli("export", "queue", "--status", "approved,sent", "-o", "q2.csv")
    assert code == 0 and "wrote 2 rows" in out


def test_hostile_text_intact_in_jsonl(seeded, cli, tmp_path):
    code, _, err = cli("export", "audience", "1", "--format", "jsonl", "-o", "h.jsonl")
    assert code == 0, err
    rows = {r["user_id"]: r for r in map(json.loads, (tmp_path / "h.jsonl").read_text(encoding="utf-8").splitlines())}
    assert rows["1000003"]["name"] == HOSTILE_NAME and rows["1000003"]["bio"] == HUGE_BIO


def test_clear_errors(seeded, cli, tmp_path):
    code, out, err = cli("export", "audience", "no-such", "--format", "csv")
    assert code == 1 and "no audience with id or name 'no-such'" in err and "健身人群" in err
    code, out, err = cli("export", "audience", "1", "--tier", "vip")
    assert code == 1 and "unknown tier 'vip'" in err
    code, out, err = cli("export", "audience", "1", "--active-since", "last tuesday")
    assert code == 1 and "cannot read 'last tuesday'" in err
    code, out, err = cli("export", "audience", "1", "--format", "pdf")
    assert code == 2
    code, out, err = cli("export", "audience", "1", "-o", str(tmp_path / "missing" / "dir" / "x.csv"))
    assert code == 0        # folders are created


def test_parse_since_forms():
    from bot.report.exports import parse_since

    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    assert parse_since("30d", now) == "2026-10-21T12:00:00+00:00"
    assert parse_since("12h", now) == "2026-11-20T00:00:00+00:00"
    assert parse_since("2026-11-01") == "2026-11-01T00:00:00+00:00"
    assert parse_since("2026-11-01T08:00+08:00") == "2026-11-01T08:00:00+08:00"


def test_uids_writer_skips_unsafe_ids(tmp_path):
    from bot.report.exports.writers import write_uids

    stats = write_uids(tmp_path / "u.txt", ["1", "2", "3\n4", "", None, "2", "5\u202e"])
    assert (tmp_path / "u.txt").read_text() == "1\n2\n"
    assert stats.rows == 2 and "4 ids left out" in stats.notes[0]
