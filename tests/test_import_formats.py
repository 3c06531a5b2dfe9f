"""MediaCrawler and weibo-crawler imports on samples in their real output shapes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from config.times import platform_time
from bot.errors import HuaxiangError
from bot.find.importer import import_file
from bot.find.imports import BadLine, formats
from bot.find.imports import mediacrawler, weibo_crawler
from storage.db import connect, transaction
from storage.posts import upsert_posts, upsert_users
from storage.records import Post, User

FIX = Path(__file__).parent / "fixtures" / "imports"
MC = FIX / "mediacrawler"
WC = FIX / "weibo-crawler"


def rows(db, sql: str, *args):
    return db.execute(sql, args).fetchall()


def build_weibodata(tmp_path: Path) -> Path:
    """weibo-crawler's weibodata.db, made from the recorded schema and rows."""
    path = tmp_path / "weibodata.db"
    con = sqlite3.connect(path)
    con.executescript((WC / "weibodata.sql").read_text(encoding="utf-8"))
    con.close()
    return path


def test_both_formats_are_discovered():
    known = formats()
    assert "mediacrawler" in known and "weibo-crawler" in known


# -- MediaCrawler --------------------------------------------------------------------------

def test_mediacrawler_json_posts(db):
    summary = import_file(db, MC / "search_contents_2026-11-22.json", fmt="mediacrawler")
    assert (summary.imported, summary.skipped) == (2, 3)
    problems = [b.problem for b in summary.problems]
    assert [b.line for b in summary.problems] == [3, 4, 5]
    assert "bad date '昨天 12:00'" in problems[0]
    assert problems[1] == "missing 'content'"
    assert "not a Weibo record" in problems[2]
    post = rows(db, "SELECT platform, uid, text, created_at, likes, comments, reposts, region, topics, url, raw"
                    " FROM posts WHERE pid = '5104123456789013'")[0]
    platform, uid, text, created, likes, comments, reposts, region, topics, url, raw = post
    assert (platform, uid) == ("weibo", "7023456789")
    assert text == "新入的蛋卷桌，@户外老炮儿 推荐的 & 确实稳 #露营装备#"        # HTML and entities gone
    assert created == "2026-11-22T08:12:45+08:00"
    assert (likes, comments, reposts) == (12000, None, 0)                   # '1.2万', '' (unknown), '0'
    assert region == "上海" and json.loads(topics) == ["露营装备"]
    assert url == "https://m.weibo.cn/detail/5104123456789013"
    raw = json.loads(raw)
    assert raw["new_column_from_a_newer_version"] == "kept" and raw["source_keyword"] == "露营"
    author = rows(db, "SELECT name, gender, profile_url FROM users WHERE platform = 'weibo' AND uid = '6012345678'")[0]
    assert author == ("安吉露营阿杰", "m", "https://m.weibo.cn/u/6012345678?uid=6012345678&luicode=10000011")


def test_mediacrawler_json_lines_and_reimport_is_a_no_op(db):
    first = import_file(db, MC / "search_contents_2026-11-22.jsonl", fmt="mediacrawler")
    assert (first.imported, first.skipped) == (3, 1)
    assert "not valid JSON" in first.problems[0].problem and first.problems[0].line == 3
    # numeric ids and a millisecond timestamp
    assert rows(db, "SELECT uid, created_at FROM posts WHERE pid = '5104123456789016'") == [("6012345678", "2026-11-22T08:12:45+08:00")]
    again = import_file(db, MC / "search_contents_2026-11-22.jsonl", fmt="mediacrawler")
    assert (again.imported, again.updated, again.duplicates) == (0, 0, 3)
    # the JSON array holds the same posts: duplicates, not new rows
    same = import_file(db, MC / "search_contents_2026-11-22.json", fmt="mediacrawler")
    assert same.imported == 0 and same.duplicates == 2


def test_mediacrawler_comments_csv(db):
    summary = import_file(db, MC / "search_comments_2026-11-22.csv", fmt="mediacrawler")
    assert (summary.imported, summary.skipped) == (2, 2)
    assert [b.problem for b in summary.problems] == ["missing 'comment_id'", "bad date 'bad'"]
    assert [b.line for b in summary.problems] == [4, 5]
    got = rows(db, "SELECT pid, kind, parent_pid, uid, text, likes, comments, region FROM posts ORDER BY pid")
    assert got[0] == ("5104200000000001", "comment", "5104123456789012", "3012345001", "求营地名字！", 5, 2, "江苏")
    assert got[1][4] == "回复@徒步的Leo:安吉的竹林营地"
    raw = json.loads(rows(db, "SELECT raw FROM posts WHERE pid = '5104200000000002'")[0][0])
    assert raw["parent_comment_id"] == "5104200000000001"


def test_mediacrawler_creators_csv_and_nobot(db):
    summary = import_file(db, MC / "creator_creators_2026-11-22.csv", fmt="mediacrawler")
    assert summary.users == 2 and summary.skipped == 0
    got = rows(db, "SELECT uid, name, gender, bio, followers, following, tags, location, nobot, profile_fetched_at IS NOT NULL"
                   " FROM users ORDER BY uid")
    assert got[0] == ("6012345678", "安吉露营阿杰", "m", "营地主理人 | 带你去山里", 45000, 321, '["露营","户外"]', "浙江", 0, 1)
    assert got[1][:4] == ("7023456789", "山野小鹿", "f", "轻量化徒步\n#nobot")
    assert got[1][8] == 1                                                   # opted out


def test_mediacrawler_missing_column_names_it(db, cli, tmp_path):
    with pytest.raises(HuaxiangError, match=r"missing column 'content'"):
        list(mediacrawler.read(MC / "search_contents_missing_content.csv"))
    code, out, err = cli("--db", tmp_path / "x.db", "import", MC / "search_contents_missing_content.csv", "--format", "mediacrawler")
    assert code == 1 and "missing column 'content'" in err


def test_mediacrawler_gb18030_csv_from_excel(tmp_path):
    text = (MC / "creator_creators_2026-11-22.csv").read_text(encoding="utf-8-sig")
    path = tmp_path / "creators_excel.csv"
    path.write_bytes(text.encode("gb18030"))
    users = [u for u in mediacrawler.read(path) if isinstance(u, User)]
    assert [u.name for u in users] == ["安吉露营阿杰", "山野小鹿"]


def test_mediacrawler_value_parsers():
    assert mediacrawler.parse_count("3亿") == 300_000_000
    assert mediacrawler.parse_count("1,024") == 1024
    assert mediacrawler.parse_count("很多") is None
    assert platform_time("Sun Nov 22 09:41:03 +0800 2026") == "2026-11-22T09:41:03+08:00"
    assert platform_time("") is None
    with pytest.raises(ValueError, match="bad date"):
        platform_time("2026-13-45")
    assert mediacrawler.split_list('{"a": "露营", "b": "户外"}') == ["露营", "户外"]
    assert mediacrawler.parse_count(float("inf")) is None and mediacrawler.parse_count(10**20) is None
    with pytest.raises(ValueError, match="bad timestamp"):
        platform_time(float("inf"))


def test_mediacrawler_rejects_a_file_of_something_else(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(HuaxiangError, match="not a MediaCrawler Weibo CSV"):
        list(mediacrawler.read(path))
    bad = tmp_path / "broken.json"
    bad.write_text('[{"note_id": 1,', encoding="utf-8")
    with pytest.raises(HuaxiangError, match="not valid JSON"):
        list(mediacrawler.read(bad))


# -- weibo-crawler ---------------------------------------------------------------------------

def test_weibo_crawler_sqlite(db, tmp_path):
    path = build_weibodata(tmp_path)
    summary = import_file(db, path, fmt="weibo-crawler")
    assert summary.imported == 4 and summary.skipped == 2                   # 3 posts + 1 comment
    assert [b.problem for b in summary.problems] == ["weibo row 4: bad date 'yesterday'", "weibo row 5: missing 'user_id'"]
    users = rows(db, "SELECT uid, name, gender, followers, following, location, bio, nobot FROM users ORDER BY uid")
    assert ("6012345678", "安吉露营阿杰", "m", 45000, 321, "浙江 湖州", "营地主理人 #NoBot", 1) in users
    assert ("7023456789", "山野小鹿", "f", 1024, 88, "上海 徐汇区", "轻量化徒步 | 周末露营", 0) in users
    repost = rows(db, "SELECT uid, repost_of, created_at, url FROM posts WHERE pid = '5104123456789020'")[0]
    assert repost == ("7023456789", "5104123456789012", "2026-11-22T15:00:00+08:00", "https://weibo.com/7023456789/P1aRePoSt")
    orig = rows(db, "SELECT topics, likes, comments, reposts FROM posts WHERE pid = '5104123456789012'")[0]
    assert (json.loads(orig[0]), orig[1:]) == (["露营", "周末去哪儿"], (128, 23, 5))
    assert rows(db, "SELECT mentions FROM posts WHERE pid = '5104123456789013'")[0][0] == '["户外老炮儿"]'
    comment = rows(db, "SELECT kind, parent_pid, uid FROM posts WHERE pid = '5104200000000001'")[0]
    assert comment == ("comment", "5104123456789012", "3012345001")
    assert json.loads(rows(db, "SELECT raw FROM posts WHERE pid = '5104123456789013'")[0][0])["source"] == "iPhone 15 Pro"
    assert import_file(db, path, fmt="weibo-crawler").imported == 0          # idempotent


def test_weibo_crawler_sqlite_without_the_tables_or_columns(tmp_path):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(HuaxiangError, match="no 'weibo' table.*found: other"):
        list(weibo_crawler.read(empty))
    nocol = tmp_path / "nocol.db"
    con = sqlite3.connect(nocol)
    con.execute("CREATE TABLE weibo (id, user_id, content)")
    con.close()
    with pytest.raises(HuaxiangError, match="table 'weibo' is missing column 'text'"):
        list(weibo_crawler.read(nocol))


def test_weibo_crawler_account_csv_with_chinese_headers(db, tmp_path):
    # weibo-crawler writes weibo/<screen_name>/<user_id>.csv: the owner comes from the path
    target = tmp_path / "weibo" / "山野小鹿"
    target.mkdir(parents=True)
    path = Path(shutil.copy(WC / "weibo" / "山野小鹿" / "7023456789.csv", target / "7023456789.csv"))
    items = list(weibo_crawler.read(path))
    posts = [i for i in items if isinstance(i, Post)]
    bad = [i for i in items if isinstance(i, BadLine)]
    assert [p.pid for p in posts] == ["5104123456789013", "5104123456789020", "5104123456789012"]
    first = posts[0]
    assert first.uid == "7023456789" and first.author.name == "山野小鹿"
    assert first.created_at == "2026-11-22T16:12:45+08:00"                  # 完整日期 wins over 日期
    assert first.likes == 12000 and first.topics == ["露营装备"] and first.mentions == ["户外老炮儿"]
    assert first.raw["工具"] == "iPhone 15 Pro"                              # raw keeps the original headers
    repost, original = posts[1], posts[2]
    assert repost.repost_of == "5104123456789012"
    assert (original.uid, original.author.name, original.likes) == ("6012345678", "安吉露营阿杰", 128)
    assert original.topics == ["露营", "周末去哪儿"]
    assert [(b.line, b.problem) for b in bad] == [(4, "bad date '下午三点'"), (5, "missing 'id'")]
    summary = import_file(db, path, fmt="weibo-crawler")
    assert (summary.imported, summary.skipped) == (3, 2)


def test_weibo_crawler_users_csv(db):
    summary = import_file(db, WC / "users.csv", fmt="weibo-crawler")
    assert summary.users == 2
    got = rows(db, "SELECT uid, name, followers, following, posts_count, verified, verified_reason, bio, profile_url"
                   " FROM users WHERE uid = '6012345678'")[0]
    assert got == ("6012345678", "安吉露营阿杰", 45000, 321, 3456, 1, "安吉竹林营地主理人", "营地主理人", "https://weibo.com/u/6012345678")


def test_weibo_crawler_english_headers_keep_unknown_columns():
    (post,) = list(weibo_crawler.read(WC / "weibo_english.csv"))
    assert post.uid == "3012345001" and post.author.name == "徒步的Leo"
    assert post.text == "秋天的莫干山 #徒步#"                                  # <b> and &nbsp; gone
    assert post.raw["extra_note"] == "my own column"


def test_weibo_crawler_missing_text_column_is_named(cli, tmp_path):
    code, out, err = cli("--db", tmp_path / "x.db", "import", WC / "missing_text.csv", "--format", "weibo-crawler")
    assert code == 1 and "missing column 'text'" in err and "正文" in err


def test_weibo_crawler_json_output(tmp_path):
    doc = {
        "user": {"id": "7023456789", "screen_name": "山野小鹿", "gender": "f", "followers_count": 1024, "follow_count": 88,
                 "statuses_count": 1024, "description": "轻量化徒步", "verified": False},
        "weibo": [
            {"id": 5104123456789013, "bid": "P1aXyZwVu", "text": "新入的蛋卷桌 #露营装备#", "created_at": "2026-11-22",
             "full_created_at": "2026-11-22 16:12:45", "attitudes_count": 12000, "comments_count": 0, "reposts_count": 0,
             "topics": "露营装备", "at_users": ""},
            {"id": 5104123456789020, "bid": "P1aRePoSt", "text": "转发微博", "full_created_at": "2026-11-22 15:00:00",
             "retweet": {"id": 5104123456789012, "bid": "P1aBcDeFg", "user_id": 6012345678, "screen_name": "安吉露营阿杰",
                         "text": "周末带娃去安吉露营", "full_created_at": "2026-11-22 17:41:03"}},
            "not an object",
        ],
    }
    path = tmp_path / "7023456789.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    items = list(weibo_crawler.read(path))
    assert isinstance(items[0], User) and items[0].posts_count == 1024
    posts = [i for i in items if isinstance(i, Post)]
    assert [(p.pid, p.uid, p.repost_of) for p in posts] == [
        ("5104123456789013", "7023456789", None),
        ("5104123456789020", "7023456789", "5104123456789012"),
        ("5104123456789012", "6012345678", None),
    ]
    assert isinstance(items[-1], BadLine) and "expected an object" in items[-1].problem


def test_weibo_crawler_cli_import(cli, tmp_path):
    path = build_weibodata(tmp_path)
    code, out, err = cli("--db", tmp_path / "cli.db", "import", path, "--format", "weibo-crawler")
    assert code == 0, err
    assert "imported 4 new posts" in out and "skipped 2 bad lines" in out
    assert "weibo row 4: bad date 'yesterday'" in err


# -- hostile records: a Post/User or a ValueError (a BadLine), never a crash or a bad row ------------

_MC_KEYS = ["note_id", "comment_id", "user_id", "content", "create_time", "create_date_time", "liked_count",
            "comments_count", "shared_count", "nickname", "gender", "desc", "fans", "follows", "tag_list",
            "ip_location", "note_url", "avatar"]
_scalar = (st.none() | st.booleans() | st.integers(-10, 10**14) | st.floats(allow_nan=True) | st.text(max_size=10)
           | st.sampled_from(["1.2万", "1795311663", "2026-11-22 09:41:03", "<b>x</b>&amp;", "https://weibo.com/1",
                             float("inf"), 10**20, -3, "9e99亿", "1795311663000"]))
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                      max_leaves=8)
_records = st.fixed_dictionaries({"note_id": _value, "user_id": _value, "content": _value},
                                 optional={k: _value for k in _MC_KEYS if k not in ("note_id", "user_id", "content")}) | st.dictionaries(st.sampled_from(_MC_KEYS), _value, max_size=10)
_fuzz = {}


@given(st.lists(_records, max_size=4))
@hyp_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_mediacrawler_record_parses_or_is_a_bad_line(records):
    items = []
    for rec in records:
        try:
            items.append(mediacrawler.parse_record(rec))
        except ValueError:
            continue
    for it in items:
        assert isinstance(it.uid, str) and it.uid
        if isinstance(it, Post):
            assert isinstance(it.pid, str) and isinstance(it.text, str)
            assert it.created_at is None or isinstance(it.created_at, str)
    if "db" not in _fuzz:
        _fuzz["db"] = connect(":memory:")
    db = _fuzz["db"]
    with transaction(db):
        upsert_users(db, [i for i in items if isinstance(i, User)])
        upsert_posts(db, [i for i in items if isinstance(i, Post)])
