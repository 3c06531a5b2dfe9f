"""Text from strangers: stored intact, shown safely in terminal tables."""

from __future__ import annotations

import json

from bot.textsafe import terminal_safe

HOSTILE = [
    "<script>alert(1)</script>",
    "正常文字\u202e反转的文字\u202c结束",          # bidi override
    "颜色\x1b[31m红色\x1b[0m 光标\x1b[2J",        # ANSI escapes
    "[bold red]rich markup[/] [link=http://x]点我[/link]",
    "😀👍🏽👨‍👩‍👧 emoji 健身💪",
    "繁體中文與简体中文混合 #健身打卡#",
    "长" * 100_000,                               # 100 KB post
]


def test_terminal_safe_removes_controls_and_bounds_length():
    out = terminal_safe(HOSTILE[1] + HOSTILE[2], 200)
    assert "\u202e" not in out and "\x1b" not in out
    assert len(terminal_safe(HOSTILE[-1], 120)) == 120
    assert terminal_safe(None) == ""


def test_search_table_keeps_the_terminal_sane_and_the_database_intact(cli, tmp_path):
    rows = [{"id": str(i), "user_id": f"u{i}", "user_name": "\u202e恶意名字[red]x[/]", "text": t + " 搜索词"}
            for i, t in enumerate(HOSTILE)]
    (tmp_path / "h.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert cli("--db", "h.db", "import", "h.jsonl")[0] == 0
    code, out, err = cli("--db", "h.db", "search", "搜索词")
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out
    assert "[bold red]rich markup[/]" in out                  # markup shown literally, not interpreted
    assert "<script>alert(1)</script>" in out
    assert max(len(line) for line in out.splitlines()) < 400   # the 100 KB post is truncated in the table
    from storage.db import connect

    db = connect(tmp_path / "h.db")
    stored = [r[0] for r in db.execute("SELECT text FROM posts ORDER BY CAST(pid AS INTEGER)")]
    assert stored == [t + " 搜索词" for t in HOSTILE]        # intact in storage
