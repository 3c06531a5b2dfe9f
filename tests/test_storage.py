"""Schema, migrations, idempotent upserts and search."""

from __future__ import annotations

import sqlite3

import pytest

from storage.db import StorageError, connect, migration_names, transaction
from storage.posts import search_posts, table_counts, upsert_posts
from storage.records import Post, User


def test_migrations_apply_to_an_empty_file_and_only_once(tmp_path):
    path = tmp_path / "fresh.db"
    db = connect(path)
    applied = [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert applied == migration_names()
    assert {"users", "posts", "queue", "audit_log", "crawl_runs", "audiences", "memberships"} <= {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    again = connect(path)
    assert again.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(applied)


def test_wal_busy_timeout_and_foreign_keys(tmp_path):
    db = connect(tmp_path / "x.db", busy_timeout_ms=12345)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 12345
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StorageError):
        connect(bad)


def test_audit_log_is_append_only(db):
    db.execute("INSERT INTO audit_log (at, actor, action) VALUES ('2026-01-01', 'li', 'approve')")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_log SET actor = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_log")


def _posts(n: int, likes: int = 0) -> list[Post]:
    return [
        Post("weibo", f"p{i}", f"u{i % 4}", text=f"第{i}条 #健身打卡# 今天练腿", created_at=f"2026-03-{i % 28 + 1:02d}T08:00:00+08:00",
             topics=["健身打卡"], likes=likes, raw={"id": i},
             author=User("weibo", f"u{i % 4}", name=f"用户{i % 4}", followers=10 * i))
        for i in range(n)
    ]


def test_upsert_twice_changes_nothing(db):
    with transaction(db):
        pc, uc = upsert_posts(db, _posts(20), query="q1")
    assert (pc.new, uc.new) == (20, 4)
    before = db.execute("SELECT * FROM posts ORDER BY id").fetchall()
    users_before = db.execute("SELECT * FROM users ORDER BY id").fetchall()
    with transaction(db):
        pc, uc = upsert_posts(db, _posts(20), query="q1")
    assert (pc.new, pc.updated, pc.unchanged) == (0, 0, 20)
    assert db.execute("SELECT * FROM posts ORDER BY id").fetchall() == before
    assert db.execute("SELECT * FROM users ORDER BY id").fetchall() == users_before
    assert table_counts(db, ["posts", "users", "post_queries"]) == {"posts": 20, "users": 4, "post_queries": 20}


def test_changed_counts_update_the_row_and_keep_the_raw_payload(db):
    with transaction(db):
        upsert_posts(db, _posts(3))
    with transaction(db):
        pc, _ = upsert_posts(db, _posts(3, likes=7))
    assert pc.updated == 3
    assert {r[0] for r in db.execute("SELECT likes FROM posts")} == {7}
    assert db.execute("SELECT raw FROM posts WHERE pid = 'p1'").fetchone()[0] == '{"id":1}'


def test_author_stub_does_not_erase_a_known_profile(db):
    with transaction(db):
        upsert_posts(db, [Post("weibo", "a", "u1", text="x", author=User("weibo", "u1", name="老王", bio="爱健身", followers=500))])
        upsert_posts(db, [Post("weibo", "b", "u1", text="y", author=User("weibo", "u1", name="老王"))])
    row = db.execute("SELECT name, bio, followers FROM users WHERE uid = 'u1'").fetchone()
    assert row == ("老王", "爱健身", 500)


def test_a_copy_that_does_not_show_the_repost_keeps_the_stored_original(tmp_path):
    """A repost embedded in someone else's repost comes without its own original:
    whichever copy is stored last, the row is the same."""
    direct = Post("weibo", "x", "u1", text="转发微博", repost_of="orig", raw={"id": "x", "retweeted_status": {"id": "orig"}})
    embedded = Post("weibo", "x", "u1", text="转发微博", raw={"id": "x"})
    rows = []
    for name, order in (("a", [direct, embedded]), ("b", [embedded, direct]), ("c", [direct, embedded, direct])):
        db = connect(tmp_path / f"{name}.db")
        for p in order:
            with transaction(db):
                upsert_posts(db, [p])
        rows.append(db.execute("SELECT repost_of, content_hash, raw FROM posts WHERE pid = 'x'").fetchone())
        with transaction(db):                                  # one call with both copies, as an author batch has
            pc, _ = upsert_posts(db, [embedded, direct, embedded])
        assert (pc.updated, pc.unchanged) == (0, 3)
        db.close()
    assert rows[0] == rows[1] == rows[2]
    assert rows[0][0] == "orig"


def test_a_copy_without_the_group_link_keeps_the_stored_group(tmp_path):
    in_group = Post("weibo", "g", "u1", text="超话打卡", group_id="100808abc", raw={"id": "g", "group": "100808abc"})
    elsewhere = Post("weibo", "g", "u1", text="超话打卡", raw={"id": "g"})
    rows = []
    for name, order in (("a", [in_group, elsewhere]), ("b", [elsewhere, in_group])):
        db = connect(tmp_path / f"{name}.db")
        for p in order:
            with transaction(db):
                upsert_posts(db, [p])
        rows.append(db.execute("SELECT group_id, content_hash, raw FROM posts WHERE pid = 'g'").fetchone())
        db.close()
    assert rows[0] == rows[1] and rows[0][0] == "100808abc"


def test_full_text_search_finds_chinese_substrings(db):
    with transaction(db):
        upsert_posts(db, _posts(5) + [Post("weibo", "c1", "u9", text="手冲咖啡的温度很重要")])
    assert [r["pid"] for r in search_posts(db, "咖啡的温度")] == ["c1"]
    assert [r["pid"] for r in search_posts(db, "咖啡")] == ["c1"]
    assert len(search_posts(db, "练腿")) == 5
    assert search_posts(db, '"; DROP TABLE posts; --') == []
