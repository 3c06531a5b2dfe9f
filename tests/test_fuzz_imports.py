"""Fuzzing every import format at the file level, through ``import_file``.

tests/test_fuzz_foundation.py fuzzes JSON lines and tests/test_import_formats.py
fuzzes single MediaCrawler records; here whole files of each format
(weibo-crawler CSV, JSON and SQLite; MediaCrawler JSON, JSON lines and CSV;
and bytes that are none of them) go through the real driver. The contract:
an import either stores what it can and counts the rest as skipped, or
fails with one clear ``HuaxiangError`` naming the file - and a failed
import, or any ``--strict`` import of a file with a bad record, leaves the
database exactly as it was.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings as hyp_settings, strategies as st

from bot.errors import HuaxiangError
from bot.find.importer import import_file
from bot.find.imports.weibo_crawler import CN_COLUMNS
from storage.db import connect

FUZZ = hyp_settings(max_examples=100, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])
TABLES = ("posts", "users", "post_queries", "posts_fts", "user_queries")

MC_COLUMNS = ["note_id", "comment_id", "user_id", "content", "create_time", "create_date_time", "liked_count",
              "comments_count", "shared_count", "nickname", "gender", "desc", "fans", "follows", "tag_list",
              "ip_location", "note_url", "avatar", "title"]
WC_COLUMNS = ["id", "bid", "user_id", "screen_name", "text", "topics", "at_users", "created_at", "attitudes_count",
              "comments_count", "reposts_count", "retweet_id", "original", "retweet_user_id", "retweet_text",
              "nick_name", "follower_count", "follow_count", "bio", "gender", "verified", "ip", "weibo_id"]
CN_HEADERS = sorted(CN_COLUMNS)

cell = st.one_of(
    st.text(max_size=12),
    st.integers(-10, 10**20).map(str),
    st.sampled_from(["", "1.2万", "3亿", "9e99亿", "1795311663", "1795311663000", "2026-11-22 09:41:03", "yesterday",
                     "Sun Nov 22 09:41:03 +0800 2026", "<b>x</b>&amp;", "#话题#", "@某人", "男", "f", "是", "否",
                     "[\"a\", \"b\"]", "{\"0\": 1}", "\u202e\u2066", "\x00", "a,b;c", "\"quoted\"", "line\nbreak",
                     "https://weibo.com/1/x", "https://example.com/not-weibo", "inf", "nan", "-1"]),
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) | cell,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
sql_value = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True), cell,
                      st.binary(max_size=8))


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    return out.getvalue()


def table_rows(columns: list[str], values=cell, max_rows: int = 4):
    return st.lists(st.lists(values, min_size=len(columns), max_size=len(columns)), max_size=max_rows)


@st.composite
def csv_file(draw, names: list[str], required: list[str]) -> str:
    cols = draw(st.lists(st.sampled_from(names), max_size=8, unique=True))
    if draw(st.booleans()):
        cols = list(dict.fromkeys(required + cols))
    rows = draw(table_rows(cols))
    return csv_text(cols, rows)


_db: dict[str, Any] = {}


def database():
    if "db" not in _db:
        _db["db"] = connect(":memory:")
    return _db["db"]


def counts(db) -> dict[str, int]:
    return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def check(path: Path, fmt: str) -> None:
    """Both modes on one file: stored-or-skipped, or a clear error with nothing written."""
    db = database()
    for strict in (False, True):
        before = counts(db)
        try:
            summary = import_file(db, path, fmt, strict=strict)
        except HuaxiangError as exc:
            assert str(path) in str(exc), exc
            assert counts(db) == before, ("half-written", strict, str(exc))
            status = db.execute("SELECT status FROM import_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
            assert status == "failed"
            assert not db.in_transaction
            continue
        assert not db.in_transaction
        if strict:
            assert summary.skipped == 0
        after = counts(db)
        assert after["posts"] == after["posts_fts"]
        assert after["posts"] - before["posts"] == summary.imported
        assert all(p.line >= 0 and p.problem for p in summary.problems)


def write(tmp_path_factory, name: str, data: str | bytes) -> Path:
    path = tmp_path_factory.mktemp("fz") / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


# -- weibo-crawler -----------------------------------------------------------------------------------------------
@FUZZ
@given(csv_file(CN_HEADERS + ["id", "user_id"], ["id", "正文"]), st.sampled_from(["1642591402.csv", "posts.csv", "users.csv"]))
def test_weibo_crawler_csv(tmp_path_factory, text, name):
    check(write(tmp_path_factory, name, text), "weibo-crawler")


@FUZZ
@given(csv_file(WC_COLUMNS, ["id", "user_id", "text"]))
def test_weibo_crawler_csv_english_headers(tmp_path_factory, text):
    check(write(tmp_path_factory, "w.csv", text), "weibo-crawler")


@FUZZ
@given(st.one_of(
    st.fixed_dictionaries({"user": st.dictionaries(st.sampled_from(WC_COLUMNS), json_value, max_size=5) | json_value,
                           "weibo": st.lists(st.dictionaries(st.sampled_from(WC_COLUMNS + ["retweet"]), json_value,
                                                             max_size=8) | json_value, max_size=4) | json_value}),
    json_value))
def test_weibo_crawler_json(tmp_path_factory, doc):
    check(write(tmp_path_factory, "1642591402.json", json.dumps(doc, ensure_ascii=False)), "weibo-crawler")


@st.composite
def sqlite_tables(draw):
    tables = {}
    for table, required in (("weibo", ["id", "user_id", "text"]), ("user", ["id"]),
                            ("comments", ["id", "weibo_id", "user_id", "text"])):
        if table != "weibo" and not draw(st.booleans()):
            continue
        cols = draw(st.lists(st.sampled_from(WC_COLUMNS), max_size=5, unique=True))
        if draw(st.integers(0, 4)):
            cols = list(dict.fromkeys(required + cols))
        if not cols:
            cols = ["x"]
        tables[table] = (cols, draw(table_rows(cols, sql_value)))
    return tables


@FUZZ
@given(sqlite_tables())
def test_weibo_crawler_sqlite(tmp_path_factory, tables):
    path = tmp_path_factory.mktemp("fz") / "weibodata.db"
    con = sqlite3.connect(path)
    for table, (cols, rows) in tables.items():
        con.execute(f'CREATE TABLE "{table}" ({", ".join(f"{c!r}" for c in cols)})')
        con.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" for _ in cols)})', rows)
    con.commit()
    con.close()
    check(path, "weibo-crawler")


# -- MediaCrawler ------------------------------------------------------------------------------------------------
@FUZZ
@given(csv_file(MC_COLUMNS, ["note_id", "user_id", "content"]))
def test_mediacrawler_csv(tmp_path_factory, text):
    check(write(tmp_path_factory, "search_contents_2026.csv", text), "mediacrawler")


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(MC_COLUMNS), json_value, max_size=8) | json_value, max_size=5),
       st.sampled_from(["array", "lines", "object"]))
def test_mediacrawler_json(tmp_path_factory, records, layout):
    if layout == "array":
        text = json.dumps(records, ensure_ascii=False)
    elif layout == "lines":
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    else:
        text = json.dumps(records[0] if records else {}, ensure_ascii=False, indent=1)
    check(write(tmp_path_factory, "search_contents_2026.json", text), "mediacrawler")


# -- bytes that are none of them, and hostile sizes ----------------------------------------------------------------
@FUZZ
@given(st.sampled_from(["weibo-crawler", "mediacrawler", "jsonl"]), st.sampled_from(["f.csv", "f.json", "f.jsonl", "f.db"]),
       st.binary(max_size=300))
@example("weibo-crawler", "f.db", b"SQLite format 3\x00" + b"\x00" * 200)
@example("mediacrawler", "f.json", b"[" * 50_000)
@example("mediacrawler", "f.jsonl", b'{"note_id": 1}\n' + b"[" * 50_000 + b"\n")
@example("jsonl", "f.jsonl", b"[" * 50_000)
@example("mediacrawler", "f.csv", b"note_id,user_id,content,tag_list\n1,2,x," + b"[" * 50_000 + b"\n")
@example("weibo-crawler", "f.json", b'{"user": {}, "weibo": ' + b"[" * 50_000)
@example("mediacrawler", "f.csv", b"note_id,user_id,content\n1,2," + b"x" * 200_000 + b"\n")
@example("weibo-crawler", "1642591402.csv", "id,正文\n1,".encode() + "长".encode() * 140_000 + b"\n")
@example("mediacrawler", "f.csv", b"note_id,user_id,content\n1,2,\"unterminated\n")
@example("mediacrawler", "f.csv", b"\xff\xfe\x00\x00")
def test_any_bytes_in_any_format(tmp_path_factory, fmt, name, data):
    check(write(tmp_path_factory, name, data), fmt)


def test_a_post_longer_than_the_csv_modules_field_limit_imports_intact(db, tmp_path):
    text = "长文" * 80_000 + "\u202e 😀"          # 160,000 characters in one field
    path = tmp_path / "1642591402.csv"
    path.write_text(csv_text(["id", "正文", "完整日期"], [["4900000000000001", text, "2026-11-22 09:41:03"]]),
                    encoding="utf-8")
    summary = import_file(db, path, "weibo-crawler", strict=True)
    assert summary.imported == 1
    stored = db.execute("SELECT text FROM posts WHERE pid = '4900000000000001'").fetchone()[0]
    assert stored == text.strip()
