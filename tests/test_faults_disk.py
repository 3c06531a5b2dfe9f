"""A crawl whose database fills up or turns read-only under it.

Why simulated per connection: ``PRAGMA max_page_count`` makes SQLite answer
SQLITE_FULL exactly as a full disk does, and ``PRAGMA query_only`` answers
like a read-only file; neither needs root, a small filesystem or a chmod
that root ignores. The run must stop with one clear line naming the
database (no traceback), and the file must pass ``PRAGMA integrity_check``
and resume to the same rows as a clean crawl once space is back.
"""

from __future__ import annotations

import logging
import sqlite3

import pytest

import bot.context
from bot.find.crawler import run_crawl
from storage.db import StorageError, connect
from test_crawl import queries, settings_for
from test_faults_crawl import clean, full_snapshot, same_dates, sandbox  # noqa: F401 - shared fixtures


def config_file(tmp_path, base_url: str):
    cfg = tmp_path / "huaxiang.toml"
    cfg.write_text(f"""
[[sources]]
name = "sb"
platform = "sandbox"
base_url = "{base_url}"
min_interval_s = 0.0
jitter_s = 0.0
comment_pages = 1
""" + "".join(f"""
[[queries]]
name = "{q['name']}"
source = "sb"
kind = "{q['kind']}"
value = "{q['value']}"
max_pages = {q['max_pages']}
""" for q in queries()), encoding="utf-8")
    return cfg


def limited_connect(pragma: str):
    """``connect`` whose connection then gets ``pragma`` (how the CLI is made to see a full/read-only file)."""
    real = bot.context.connect

    def opener(path, *args, **kw):
        db = real(path, *args, **kw)
        if callable(pragma):
            pragma(db)
        else:
            db.execute(pragma)
        return db

    return opener


def fill_after(extra_pages: int):
    def apply(db):
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + extra_pages}")
    return apply


def integrity(path) -> str:
    db = connect(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("extra_pages", [3, 40])
def test_disk_full_mid_crawl_fails_clearly_and_resumes(sandbox, clean, tmp_path, cli, monkeypatch, extra_pages):
    cfg = config_file(tmp_path, sandbox.base_url)
    path = tmp_path / "full.db"
    connect(path).close()
    monkeypatch.setattr(bot.context, "connect", limited_connect(fill_after(extra_pages)))
    code, out, err = cli("--config", cfg, "--db", path, "crawl")
    assert code == 1, (out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert "Traceback" not in err and "Traceback" not in out, err
    assert lines and lines[-1].startswith("huaxiang: error:") and str(path) in lines[-1], err
    assert "full" in lines[-1], err
    assert integrity(path) == "ok"
    monkeypatch.undo()                                     # space is back: the next crawl finishes the job
    db = connect(path)
    from config import load_settings

    summary = run_crawl(db, load_settings(cfg))
    assert all(r.status == "ok" for r in summary.runs), [(r.query, r.status, r.error) for r in summary.runs]
    snap = full_snapshot(db)
    statuses = [r[0] for r in db.execute("SELECT status FROM crawl_runs ORDER BY id")]
    db.close()
    assert same_dates(snap, clean)
    assert {k: v for k, v in snap.items() if k != "posted"} == {k: v for k, v in clean.items() if k != "posted"}
    assert "running" not in statuses


def test_read_only_database_fails_clearly(sandbox, tmp_path, cli, monkeypatch):
    cfg = config_file(tmp_path, sandbox.base_url)
    path = tmp_path / "ro.db"
    connect(path).close()
    monkeypatch.setattr(bot.context, "connect", limited_connect("PRAGMA query_only = ON"))
    code, out, err = cli("--config", cfg, "--db", path, "crawl")
    assert code == 1, (out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert "Traceback" not in err and "Traceback" not in out, err
    assert lines and lines[-1].startswith("huaxiang: error:") and str(path) in lines[-1], err
    assert "read-only" in lines[-1] or "readonly" in lines[-1], err
    assert integrity(path) == "ok"


def test_run_crawl_raises_a_storage_error_naming_the_file(sandbox, tmp_path, caplog):
    path = tmp_path / "api.db"
    db = connect(path)
    fill_after(2)(db)
    caplog.set_level(logging.WARNING)
    with pytest.raises(StorageError) as info:
        run_crawl(db, settings_for(path, {"sb": sandbox.base_url}, queries()))
    assert str(path) in str(info.value) and "full" in str(info.value)
    db.close()
    assert integrity(path) == "ok"


def test_database_turning_read_only_mid_crawl_stops_the_run_and_keeps_what_was_stored(sandbox, clean, tmp_path):
    path = tmp_path / "turns-ro.db"
    db = connect(path)
    settings = settings_for(path, {"sb": sandbox.base_url}, queries(), comment_pages=1)
    ticks = []

    def progress(n=1):
        ticks.append(n)
        if len(ticks) == 4:                      # after the fourth committed page, writes are refused
            db.execute("PRAGMA query_only = ON")

    with pytest.raises(StorageError) as info:
        run_crawl(db, settings, progress=progress)
    assert str(path) in str(info.value) and "read-only" in str(info.value)
    stored = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
    assert stored > 0 and db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    # The process would exit here; its lock and run are then stale and the next crawl resumes.
    db = connect(path)
    db.execute("UPDATE crawl_locks SET pid = 2147483646")
    summary = run_crawl(db, settings)
    assert all(r.status == "ok" for r in summary.runs), [(r.query, r.status, r.error) for r in summary.runs]
    snap = full_snapshot(db)
    statuses = [r[0] for r in db.execute("SELECT status FROM crawl_runs ORDER BY id")]
    db.close()
    assert same_dates(snap, clean)
    assert {k: v for k, v in snap.items() if k != "posted"} == {k: v for k, v in clean.items() if k != "posted"}
    assert statuses[0] == "interrupted" and "running" not in statuses


def test_disk_full_with_sources_crawling_in_parallel(sandbox, tmp_path, monkeypatch):
    import storage.db

    path = tmp_path / "par.db"
    db = connect(path)
    qs = queries()
    for q in qs[2:]:
        q["source"] = "sb2"                              # two sources: each crawls in its own thread and connection
    settings = settings_for(path, {"sb": sandbox.base_url, "sb2": sandbox.base_url}, qs, comment_pages=1)
    monkeypatch.setattr(storage.db, "connect", limited_connect(fill_after(6)))     # what opened() calls in each thread
    with pytest.raises(StorageError) as info:
        run_crawl(db, settings)
    assert str(path) in str(info.value) and "full" in str(info.value)
    db.close()
    assert integrity(path) == "ok"


@pytest.mark.parametrize("message, says", [
    ("database or disk is full", "is full"),
    ("attempt to write a readonly database", "read-only"),
    ("database disk image is malformed", "damaged"),
    ("database is locked", "locked for longer than the busy timeout"),
    ("no such table: posts", "database error"),
])
def test_write_failure_names_the_file_and_the_cause(db, message, says):
    from storage.db import write_failure

    err = write_failure(db, sqlite3.OperationalError(message))
    path = db.execute("PRAGMA database_list").fetchone()[2]
    assert str(err).startswith(f"{path}: ") and says in str(err) and message in str(err)
