"""Imports of files written by the tools' own store code (issue 14).

The files under fixtures/imports/mediacrawler_real and weibo_crawler_real were
produced by running MediaCrawler's and weibo-crawler's own writers on recorded
m.weibo.cn payloads; their README names every source.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from bot.errors import HuaxiangError
from bot.find.importer import import_file

FIX = Path(__file__).parent / "fixtures" / "imports"
MCR = FIX / "mediacrawler_real"
NEW, OLD = MCR / "creator_hash_era", MCR / "user_id_era"
MC_FILES = ["search_contents_2026-11-22.jsonl", "search_contents_2026-11-22.json", "search_contents_2026-11-22.csv"]
MC_COMMENTS = ["search_comments_2026-11-22.jsonl", "search_comments_2026-11-22.json", "search_comments_2026-11-22.csv"]


def one(db, sql: str, *args):
    return db.execute(sql, args).fetchone()


def built_db(dump: Path, dest: Path) -> Path:
    """The tool's SQLite file, rebuilt from its dump (binary .db files are not committed)."""
    con = sqlite3.connect(dest)
    con.executescript(dump.read_text(encoding="utf-8"))
    con.close()
    return dest


# -- MediaCrawler, creator_hash era (since 2026-07) -------------------------------------------

@pytest.mark.parametrize("name", MC_FILES)
def test_mediacrawler_creator_hash_posts_import(db, name):
    summary = import_file(db, NEW / name, fmt="mediacrawler")
    assert (summary.imported, summary.skipped) == (2, 0), summary.problems
    uid, name_, created = one(db, "SELECT p.uid, u.name, p.created_at FROM posts p JOIN users u ON u.id = p.user_id"
                                  " WHERE p.pid = '4607741009594608'")
    assert uid == "hash:d3401386675ce92f"          # the anonymised creator, never mixed with numeric Weibo ids
    assert name_ == "于***声"                        # the masked nickname kept as given
    assert created == "2021-02-23T12:28:47+08:00"


@pytest.mark.parametrize("name", MC_COMMENTS)
def test_mediacrawler_creator_hash_comments_keep_their_thread(db, name):
    summary = import_file(db, NEW / name, fmt="mediacrawler")
    assert (summary.imported, summary.skipped) == (2, 0), summary.problems
    top = one(db, "SELECT kind, parent_pid, reply_to, thread_root, comments FROM posts WHERE pid = '5337290303868548'")
    assert top == ("comment", "5336295257679240", None, None, 1)
    reply = one(db, "SELECT kind, parent_pid, reply_to, thread_root, likes, uid FROM posts WHERE pid = '5337290936160046'")
    assert reply == ("comment", "5336295257679240", "5337290303868548", "5337290303868548", 74, "hash:a665a45920422f9d")


@pytest.mark.parametrize("era", [NEW, OLD])
def test_mediacrawler_sqlite_store_imports(db, era, tmp_path):
    path = built_db(era / "sqlite_tables.sql", tmp_path / "sqlite_tables.db")
    summary = import_file(db, path, fmt="mediacrawler")
    assert (summary.imported, summary.skipped) == (4, 0), summary.problems
    assert one(db, "SELECT reply_to FROM posts WHERE pid = '5337290936160046'") == ("5337290303868548",)
    assert one(db, "SELECT created_at FROM posts WHERE pid = '4607667449893429'") == ("2021-02-23T07:36:29+08:00",)


# -- MediaCrawler, user_id era (Dec 2023 - Jun 2026): create_time 8 hours late ---------------

@pytest.mark.parametrize("name", MC_FILES)
def test_mediacrawler_prefers_create_date_time(db, name):
    """create_time of that era is the China wall clock read as UTC; create_date_time is right."""
    import_file(db, OLD / name, fmt="mediacrawler")
    assert one(db, "SELECT uid, created_at FROM posts WHERE pid = '4607741009594608'") == \
        ("1645372340", "2021-02-23T12:28:47+08:00")


def test_mediacrawler_user_id_era_creators_and_comments(db):
    import_file(db, OLD / "search_creators_2026-11-22.csv", fmt="mediacrawler")
    import_file(db, OLD / "search_comments_2026-11-22.jsonl", fmt="mediacrawler")
    assert one(db, "SELECT name, followers, gender FROM users WHERE uid = '1669879400'") == ("Dear-迪丽热巴", 63357736, "f")
    assert one(db, "SELECT uid, reply_to, region FROM posts WHERE pid = '5337290936160046'") == \
        ("123", "5337290303868548", "陕西")


# -- format detection ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", [NEW / "search_contents_2026-11-22.csv", OLD / "search_comments_2026-11-22.json",
                                  NEW / "sqlite_tables.sql"])
def test_auto_format_detects_mediacrawler(db, path, tmp_path):
    if path.suffix == ".sql":
        copy = built_db(path, tmp_path / "sqlite_tables.db")
    else:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
    summary = import_file(db, copy, fmt="auto")
    assert summary.format == "mediacrawler" and summary.skipped == 0 and summary.imported >= 2


def test_auto_format_unknown_shape_is_one_clear_line(db, tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(HuaxiangError) as exc:
        import_file(db, odd, fmt="auto")
    msg = str(exc.value)
    assert "\n" not in msg and "odd.csv" in msg and "MediaCrawler" in msg and "weibo-crawler" in msg


def test_cli_import_defaults_to_auto(cli, tmp_path):
    path = tmp_path / "search_contents.jsonl"
    shutil.copy(NEW / "search_contents_2026-11-22.jsonl", path)
    code, out, err = cli("--db", str(tmp_path / "h.db"), "import", str(path))
    assert code == 0, err
    assert "imported 2 new posts" in out and "mediacrawler" in out


# -- weibo-crawler (dataabc/weibo-crawler), written by its own writers -----------------------

WCR = FIX / "weibo_crawler_real" / "weibo"
HU = WCR / "胡歌"
WHOLE = "过刚刚好的生活，从小小的我开始"


def _copy_tree(tmp_path: Path) -> Path:
    dst = tmp_path / "weibo"
    shutil.copytree(WCR, dst)
    built_db(dst / "weibodata.sql", dst / "weibodata.db")
    return dst


@pytest.mark.parametrize("rel", ["胡歌/1223178222.csv", "胡歌/1223178222.json", "weibodata.db"])
def test_weibo_crawler_topics_are_kept_whole(db, tmp_path, rel):
    path = _copy_tree(tmp_path) / rel
    summary = import_file(db, path, fmt="weibo-crawler")
    assert summary.skipped == 0, summary.problems
    topics = json.loads(one(db, "SELECT topics FROM posts WHERE pid = '4804608494665869'")[0])
    assert topics == [WHOLE]
    original = json.loads(one(db, "SELECT topics FROM posts WHERE pid = '4804268794315521'")[0])
    assert original == ["零废弃日", "胡歌", WHOLE]


@pytest.mark.parametrize("name", ["胡歌_comments.csv", "胡歌_4804608494665869_comments.csv"])
def test_weibo_crawler_comment_csvs_import(db, tmp_path, name):
    path = _copy_tree(tmp_path) / "胡歌" / name
    summary = import_file(db, path, fmt="auto")
    assert summary.format == "weibo-crawler"
    assert (summary.imported, summary.skipped) == (2, 0), summary.problems
    row = one(db, "SELECT p.kind, p.parent_pid, p.likes, p.created_at, u.name FROM posts p JOIN users u ON u.id = p.user_id"
                  " WHERE p.pid = '5337290936160046'")
    assert row == ("comment", "4804608494665869", 74, "2026-08-29T16:39:44+08:00", "钴噜球")


def test_weibo_crawler_sqlite_comments_keep_their_thread(db, tmp_path):
    path = _copy_tree(tmp_path) / "weibodata.db"
    summary = import_file(db, path, fmt="auto")
    assert summary.format == "weibo-crawler" and summary.skipped == 0
    assert one(db, "SELECT uid, parent_pid, reply_to, thread_root FROM posts WHERE pid = '5337290936160046'") == \
        ("123", "4804608494665869", "5337290303868548", "5337290303868548")
    assert one(db, "SELECT reply_to, thread_root FROM posts WHERE pid = '5337290303868548'") == (None, None)
    assert one(db, "SELECT source FROM posts WHERE pid = '4804268794315521'") == ("微博视频号",)


def test_weibo_crawler_users_csv(db, tmp_path):
    path = _copy_tree(tmp_path) / "users.csv"
    summary = import_file(db, path, fmt="auto")
    assert summary.format == "weibo-crawler" and summary.skipped == 0
    assert one(db, "SELECT name, followers, following, posts_count, verified, verified_type, verified_reason"
                   " FROM users WHERE uid = '1223178222'") == ("胡歌", 71648000, 733, 4019, 1, 0, "演员")


def test_weibo_crawler_per_user_csv_details(db, tmp_path):
    path = _copy_tree(tmp_path) / "胡歌" / "1223178222.csv"
    import_file(db, path, fmt="auto")
    post = one(db, "SELECT uid, created_at, likes, edit_count, repost_of FROM posts WHERE pid = '4804608494665869'")
    assert post == ("1223178222", "2022-08-20T18:29:52+08:00", 116398, 0, "4804268794315521")
    assert one(db, "SELECT source, video_type FROM posts WHERE pid = '4804268794315521'") == ("微博视频号", "video")


def test_auto_format_looks_past_a_bad_first_line(db, tmp_path):
    """The first record of a JSON-lines file may be the bad one; the rest still say what the file is."""
    path = tmp_path / "export.json"                 # a suffix that says nothing
    good = (NEW / "search_contents_2026-11-22.jsonl").read_text(encoding="utf-8")
    path.write_text('{"content": "缺了 note_id"}\n' + good, encoding="utf-8")
    summary = import_file(db, path, fmt="auto")
    assert summary.format == "mediacrawler" and summary.imported == 2 and summary.skipped == 1
    ours = tmp_path / "posts.json"
    ours.write_text('{"id": "1", "text": "少了 user_id"}\n{"id": "2", "user_id": "9", "text": "好的一行"}\n',
                    encoding="utf-8")
    summary = import_file(db, ours, fmt="auto")
    assert summary.format == "jsonl" and (summary.imported, summary.skipped) == (1, 1)
    odd = tmp_path / "odd.json"
    odd.write_text('{"a": 1}\n{"b": 2}\n', encoding="utf-8")
    with pytest.raises(HuaxiangError, match="unknown shape"):
        import_file(db, odd, fmt="auto")


def test_auto_format_reads_a_large_weibo_crawler_json(db, tmp_path):
    """weibo-crawler's <user_id>.json grows past the sniff window; its top-level keys still tell."""
    doc = json.loads((WCR / "胡歌" / "1223178222.json").read_text(encoding="utf-8"))
    filler = dict(doc["weibo"][0], id=1, text="x" * 300_000)       # a long post first, as a big timeline has
    doc["weibo"].insert(0, filler)
    path = tmp_path / "1223178222.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=4), encoding="utf-8")
    assert path.stat().st_size > 256 * 1024
    summary = import_file(db, path, fmt="auto")
    assert summary.format == "weibo-crawler" and summary.skipped == 0
