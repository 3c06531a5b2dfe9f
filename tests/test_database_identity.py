"""Which file a command may open (issue 17.9) and reading a read-only
database (issue 17.10)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import storage.db
from storage.db import APPLICATION_ID, StorageError, connect

from conftest import approver

READ_COMMANDS = [["status"], ["audiences"], ["queue", "list"], ["export", "queue", "-o", "q.csv"], ["report"],
                 ["search", "x"], ["plan"], ["analyze"], ["send", "--dry-run"], ["optout", "list"]]


def _foreign(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    con.execute("INSERT INTO notes (body) VALUES ('mine')")
    con.commit()
    con.close()


def _tables(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    finally:
        con.close()


@pytest.mark.parametrize("cmd", READ_COMMANDS + [["import", "p.jsonl"], ["demo"]], ids=lambda c: " ".join(c))
def test_another_applications_database_is_never_touched(cli, tmp_path, cmd):
    _foreign(tmp_path / "other.db")
    (tmp_path / "p.jsonl").write_text('{"id": "1", "user_id": "u", "text": "x"}\n', encoding="utf-8")
    before = (tmp_path / "other.db").read_bytes()
    code, out, err = cli("--db", "other.db", *cmd)
    assert code == 1 and "another application's SQLite database (tables: notes)" in err, err
    assert "Traceback" not in err
    assert _tables(tmp_path / "other.db") == ["notes"] and (tmp_path / "other.db").read_bytes() == before


@pytest.mark.parametrize("cmd", READ_COMMANDS, ids=lambda c: " ".join(c))
def test_read_commands_never_create_a_database(cli, tmp_path, cmd):
    code, out, err = cli("--db", "huaxaing.db", *cmd)
    assert code == 1 and "huaxaing.db: no huaxiang database here" in err, (out, err)
    assert not (tmp_path / "huaxaing.db").exists()


def test_creating_commands_create_and_mark_a_database(cli, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "1", "user_id": "u", "text": "x"}\n', encoding="utf-8")
    code, out, err = cli("--db", "new.db", "import", "p.jsonl")
    assert code == 0, err
    code, out, err = cli("--db", "opt.db", "optout", "add", "u1", "--by", "王小明")
    assert code == 0, err
    for name in ("new.db", "opt.db"):
        con = sqlite3.connect(tmp_path / name)
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        con.close()
    code, out, err = cli("--db", "new.db", "status")
    assert code == 0, err


def test_an_empty_file_is_made_ours_only_by_a_creating_command(cli, tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    code, out, err = cli("--db", "empty.db", "audiences")
    assert code == 1 and "no huaxiang database here" in err
    (tmp_path / "p.jsonl").write_text('{"id": "1", "user_id": "u", "text": "x"}\n', encoding="utf-8")
    code, out, err = cli("--db", "empty.db", "import", "p.jsonl")
    assert code == 0, err


def test_a_database_made_before_the_mark_is_still_ours_and_gets_marked(tmp_path):
    db = connect(tmp_path / "old.db")
    db.execute("PRAGMA application_id = 0")          # as every database made before issue 17
    db.close()
    db = connect(tmp_path / "old.db", create=False)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


def test_connect_refuses_a_foreign_file_even_when_creating(tmp_path):
    _foreign(tmp_path / "other.db")
    with pytest.raises(StorageError, match="another application's"):
        connect(tmp_path / "other.db")
    assert _tables(tmp_path / "other.db") == ["notes"]


# -- 17.10: a read-only database can be read ----------------------------------------------------------

def _seeded(path: Path) -> None:
    from test_export import seed_fixture

    db = connect(path)
    seed_fixture(db)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def test_a_read_only_database_can_be_read(cli, tmp_path, monkeypatch):
    _seeded(tmp_path / "huaxiang.db")
    db = connect(tmp_path / "huaxiang.db")
    approver(db, "王小明")                    # so the refusal below is the read-only one
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    before = (tmp_path / "huaxiang.db").read_bytes()
    monkeypatch.setattr(storage.db, "writable", lambda file: False)   # what a 444 file is to everyone but root
    for cmd in (["status"], ["queue", "list"], ["queue", "show", "1"], ["search", "健身"],
                ["export", "audience", "1", "-o", "a.csv"], ["export", "actions", "-o", "-"], ["optout", "list"],
                ["report", "-o", "r.html"]):
        code, out, err = cli(*cmd)
        assert code == 0, (cmd, err)
    code, out, err = cli("queue", "approve", "1", "--by", "王小明")
    assert code == 1 and "the database is read-only and this command writes to it" in err, err
    assert (tmp_path / "huaxiang.db").read_bytes() == before


def test_a_read_only_file_in_a_read_only_folder_as_another_user(tmp_path):
    """The real thing: a 444 file in a 555 folder, read by a user who may not write either."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the nobody user")
    folder = Path(tempfile.mkdtemp(prefix="huaxiang-ro-"))
    try:
        _seeded(folder / "huaxiang.db")
        (folder / "huaxiang.db").chmod(0o444)
        folder.chmod(0o555)

        def as_nobody() -> None:
            os.setgid(65534)
            os.setuid(65534)

        try:
            run = subprocess.run([sys.executable, "-m", "bot", "--db", str(folder / "huaxiang.db"), "status"],
                                 cwd=folder, capture_output=True, text=True, timeout=120, preexec_fn=as_nobody,
                                 env={**os.environ, "HOME": str(folder)})
        except PermissionError:
            pytest.skip("the nobody user cannot run this Python")
        if ("Permission denied" in run.stderr and "bot" in run.stderr) or "No module named" in run.stderr:
            pytest.skip("the nobody user cannot read this checkout")
        assert run.returncode == 0, run.stderr
        assert "queue:" in run.stdout
        assert sorted(p.name for p in folder.iterdir()) == ["huaxiang.db"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)
