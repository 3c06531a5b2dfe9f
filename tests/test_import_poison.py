"""Poison rows (issue 17.4): a value no database can hold, or no date
computation can survive, is one skipped and counted line with its number;
the valid lines of the same file are kept and the import run always ends."""

from __future__ import annotations

import json

import pytest

from bot.find.importer import import_file

HUGE = "9" * 5000
GOOD = {"id": "1", "user_id": "u1", "text": "健身 增肌 蛋白粉 早餐 #健身打卡#", "created_at": "2026-05-01T20:15:00+08:00"}


def _lines(*records: str) -> str:
    return "\n".join(records) + "\n"


def _runs(db) -> list[str]:
    return [r[0] for r in db.execute("SELECT status FROM import_runs ORDER BY id")]


POISON_JSONL = [
    ('{"id": "2", "user_id": "u2", "text": "\\ud800"}', "surrogate"),
    ('{"id": "2", "user_id": "u2", "text": "x", "likes": ' + HUGE + "}", "5000 digits"),
    ('{"id": "2", "user_id": "u2", "text": "x", "created_at": "9999-12-31T23:59:59-14:00"}', "out of range"),
    ('{"id": "2", "user_id": "u2", "text": "x", "created_at": "0001-01-01T00:00:00+14:00"}', "out of range"),
    ('{"id": "2", "user_id": "u2", "text": "x", "topics": ["\\udc80"]}', "surrogate"),
]


@pytest.mark.parametrize("line,problem", POISON_JSONL)
def test_jsonl_poison_line_is_skipped_and_the_rest_kept(db, tmp_path, line, problem):
    f = tmp_path / "p.jsonl"
    third = dict(GOOD, id="3", user_id="u3")
    f.write_text(_lines(json.dumps(GOOD), line, json.dumps(third)), encoding="utf-8")
    summary = import_file(db, f)
    assert (summary.imported, summary.skipped) == (2, 1)
    assert summary.problems[0].line == 2 and problem in summary.problems[0].problem
    assert _runs(db) == ["ok"]


def _mc(note_id, **extra):
    return {"note_id": note_id, "content": "好看 #穿搭#", "user_id": "111", "nickname": "a", "create_time": 1700000000,
            "note_url": "https://m.weibo.cn/detail/1", **extra}


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_mediacrawler_poison_records(db, tmp_path, layout):
    records = [json.dumps(_mc("4900000000000001")),
               json.dumps(_mc({"x": 1})),
               json.dumps(_mc("4900000000000003"))[:-1] + ', "liked_count": ' + HUGE + "}",
               json.dumps(_mc("4900000000000004", content="\ud800")),
               json.dumps(_mc("4900000000000005", create_time="9999-12-31T23:59:59-14:00")),
               json.dumps(_mc("4900000000000006"))]
    f = tmp_path / ("c.json" if layout == "array" else "c.jsonl")
    f.write_text("[" + ",\n".join(records) + "]" if layout == "array" else _lines(*records), encoding="utf-8")
    summary = import_file(db, f, fmt="mediacrawler")
    assert summary.imported == 2 and summary.skipped == 4
    assert [p.line for p in summary.problems] == [2, 3, 4, 5]
    assert "'note_id' must be a string or a number" in summary.problems[0].problem
    pids = {r[0] for r in db.execute("SELECT pid FROM posts")}
    assert pids == {"4900000000000001", "4900000000000006"}
    assert _runs(db) == ["ok"]


def test_weibo_crawler_json_poison_records(db, tmp_path):
    doc = {"user": {"id": "123456", "nick_name": "x"},
           "weibo": [{"id": "1", "user_id": "123456", "text": "a", "attitudes_count": 7},
                     {"id": "2", "user_id": "123456", "text": "\ud800"},
                     {"id": "3", "user_id": "123456", "text": "c", "created_at": "0001-01-01T00:00:00+14:00"},
                     {"id": "4", "user_id": "123456", "text": "d"}]}
    text = json.dumps(doc).replace('"attitudes_count": 7', '"attitudes_count": ' + HUGE)
    f = tmp_path / "123456.json"
    f.write_text(text, encoding="utf-8")
    summary = import_file(db, f, fmt="weibo-crawler")
    assert summary.imported == 1 and summary.skipped == 3
    assert [p.line for p in summary.problems] == [1, 2, 3]
    assert "5000 digits" in summary.problems[0].problem
    assert _runs(db) == ["ok"]


def test_csv_huge_numbers_are_skipped_with_a_short_message(db, tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("note_id,content,user_id,create_time\n1,a,2,1700000000\n3,b,4," + HUGE + "\n", encoding="utf-8")
    summary = import_file(db, f, fmt="mediacrawler")
    assert (summary.imported, summary.skipped) == (1, 1)
    assert summary.problems[0].line == 3 and len(summary.problems[0].problem) < 400


def test_an_unexpected_failure_never_leaves_the_run_running(db, tmp_path, monkeypatch):
    import bot.find.importer as importer

    def boom(*a, **k):
        raise RuntimeError("disk gremlin")

    monkeypatch.setattr(importer, "upsert_posts", boom)
    f = tmp_path / "p.jsonl"
    f.write_text(_lines(json.dumps(GOOD)), encoding="utf-8")
    from bot.errors import HuaxiangError

    with pytest.raises(HuaxiangError, match="import stopped .*disk gremlin"):
        import_file(db, f)
    assert _runs(db) == ["failed"]


def test_cli_import_of_poison_rows_then_analyze_works(cli, tmp_path):
    rows = [dict(GOOD, id=str(i), user_id=f"u{i % 7}", text=f"健身 增肌 蛋白粉 {i} 早餐 跑步") for i in range(40)]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + [x for x, _ in POISON_JSONL]
    (tmp_path / "p.jsonl").write_text(_lines(*lines), encoding="utf-8")
    code, out, err = cli("--db", "x.db", "import", "p.jsonl")
    assert code == 0, err
    assert "Traceback" not in err and "skipped 5 bad" in out
    code, out, err = cli("--db", "x.db", "analyze", "--k", "2")
    assert code == 0, err


def test_the_last_check_catches_a_surrogate_in_any_field():
    from bot.find.imports import item_problem
    from storage.records import Post, User

    assert item_problem(Post(platform="weibo", pid="1", uid="u", text="好")) is None
    assert "topics" in item_problem(Post(platform="weibo", pid="1", uid="u", topics=["\udc80"]))
    bad_author = Post(platform="weibo", pid="1", uid="u", author=User(platform="weibo", uid="u", name="\ud800"))
    assert item_problem(bad_author) == "author.name: text with a lone surrogate (not Unicode)"
