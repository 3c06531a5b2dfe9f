"""The JSON-lines import contract and the CLI's exit codes."""

from __future__ import annotations

import json

from bot.find.importer import import_file

LINES = [
    {"id": "1", "user_id": "u1", "text": "今天 #健身打卡# 练背 @教练小李", "user_name": "阿强", "created_at": "2026-05-01T20:15:00+08:00"},
    {"id": "2", "user_id": "u1", "text": "增肌餐吃什么", "topics": ["增肌"]},
    {"id": "3", "user_id": "u2", "text": "手冲咖啡", "created_at": "2026-05-02T08:00:00", "platform": "weibo", "extra": {"k": 1}},
]


def write_jsonl(path, rows, bad: list[str] = ()):
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + list(bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_twice_gives_the_same_rows(db, tmp_path):
    f = write_jsonl(tmp_path / "posts.jsonl", LINES)
    first = import_file(db, f)
    assert (first.imported, first.duplicates, first.skipped) == (3, 0, 0)
    rows = db.execute("SELECT * FROM posts ORDER BY id").fetchall()
    second = import_file(db, f)
    assert (second.imported, second.duplicates, second.skipped) == (0, 3, 0)
    assert db.execute("SELECT * FROM posts ORDER BY id").fetchall() == rows
    assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 2


def test_fields_are_parsed_and_extras_kept(db, tmp_path):
    import_file(db, write_jsonl(tmp_path / "p.jsonl", LINES))
    post = db.execute("SELECT topics, mentions, created_at FROM posts WHERE pid = '1'").fetchone()
    assert json.loads(post[0]) == ["健身打卡"]
    assert json.loads(post[1]) == ["教练小李"]
    assert post[2] == "2026-05-01T20:15:00+08:00"
    naive = db.execute("SELECT created_at, platform, raw FROM posts WHERE pid = '3'").fetchone()
    assert naive[0] == "2026-05-02T08:00:00+08:00"
    assert naive[1] == "weibo"
    assert json.loads(naive[2])["extra"] == {"k": 1}
    assert db.execute("SELECT name FROM users WHERE uid = 'u1'").fetchone()[0] == "阿强"


def test_bad_lines_are_skipped_counted_and_named(db, tmp_path):
    bad = ["{not json", json.dumps({"id": "9", "text": "no user"}), json.dumps({"id": "8", "user_id": "u", "text": 5}),
           json.dumps({"id": "7", "user_id": "u", "text": "x", "created_at": "yesterday"}), "[1, 2]"]
    summary = import_file(db, write_jsonl(tmp_path / "p.jsonl", LINES, bad))
    assert (summary.imported, summary.skipped) == (3, 5)
    assert [p.line for p in summary.problems] == [4, 5, 6, 7, 8]
    assert "not valid JSON" in summary.problems[0].problem
    assert "user_id" in summary.problems[1].problem


def test_strict_import_writes_nothing_when_a_line_is_bad(cli, tmp_path):
    write_jsonl(tmp_path / "p.jsonl", LINES, ["oops"])
    code, out, err = cli("--db", "s.db", "import", "p.jsonl", "--strict")
    assert code == 1
    assert "p.jsonl:4" in err
    code, out, err = cli("--db", "s.db", "search", "咖啡")
    assert code == 0 and "no posts match" in out


def test_cli_exit_codes(cli, tmp_path):
    write_jsonl(tmp_path / "p.jsonl", LINES, ["oops"])
    code, out, err = cli("--db", "c.db", "import", "p.jsonl")
    assert code == 0
    assert "imported 3 new posts" in out and "skipped 1" in out
    assert "p.jsonl:4: skipped" in err
    assert cli("--db", "c.db", "import", "missing.jsonl")[0] == 1
    assert cli("--db", "c.db", "import")[0] == 2                      # usage error
    assert cli("--db", "c.db", "no-such-command")[0] == 2
    assert cli("--db", "c.db", "import", "p.jsonl", "--format", "nope")[0] == 2
    code, out, err = cli("--db", "c.db", "search", "手冲")
    assert code == 0 and "手冲咖啡" in out


def test_huge_or_odd_numbers_are_clear_errors_not_tracebacks(cli, tmp_path):
    write_jsonl(tmp_path / "p.jsonl", LINES)
    assert cli("--db", "n.db", "import", "p.jsonl")[0] == 0
    for args in (("queue", "show", "99999999999999999999"), ("search", "咖啡", "--limit", "99999999999999999999"),
                 ("export", "audience", "²"), ("export", "audience", "99999999999999999999")):
        code, out, err = cli("--db", "n.db", *args)
        assert "Traceback" not in err, (args, err)
        if code == 2:          # refused where it enters, with the range (issue 17.7)
            assert "must be from 1 to" in err.strip().splitlines()[-1], (args, err)
        else:
            assert code == 1 and err.startswith("huaxiang: error:"), (args, err)
