"""One scheduler per database: refusal, and safe take-over after a kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage import service as store
from storage.db import connect
from bot.service.lock import ServiceBusyError, ServiceLock, service_holder

REPO = Path(__file__).resolve().parent.parent


def test_a_second_lock_is_refused_with_the_holder_named(tmp_path):
    dbp = tmp_path / "t.db"
    with ServiceLock(dbp):
        with pytest.raises(ServiceBusyError) as err:
            ServiceLock(dbp, wait_s=0.2).acquire()
        assert f"pid {os.getpid()} on {socket.gethostname()}" in str(err.value)
        assert "one scheduler per database" in str(err.value)
        db = connect(dbp)
        assert service_holder(db, dbp).running
        db.close()
    db = connect(dbp)
    assert not service_holder(db, dbp).running and store.read_lock(db) is None
    db.close()


def test_a_live_holder_on_another_host_is_refused_and_a_stale_one_taken_over(tmp_path):
    dbp = tmp_path / "t.db"
    db = connect(dbp)
    now = datetime.now(timezone.utc)
    db.execute("INSERT INTO service_lock VALUES (1, 4242, 'elsewhere', 'tok', ?, ?)",
                    (now.isoformat(), now.isoformat()))
    with pytest.raises(ServiceBusyError, match="pid 4242 on elsewhere"):
        ServiceLock(dbp, wait_s=0).acquire()
    old = (now - timedelta(minutes=10)).isoformat()
    db.execute("UPDATE service_lock SET heartbeat_at = ?", (old,))
    lock = ServiceLock(dbp)
    lock.acquire()
    assert store.read_lock(db)["pid"] == os.getpid()
    lock.release()
    db.close()


HOLDER = textwrap.dedent("""
    import sys, time
    from storage import service as store
    from storage.db import connect
    from bot.service.lock import ServiceLock
    lock = ServiceLock(sys.argv[1])
    lock.acquire()
    db = connect(sys.argv[1])
    store.start_job_run(db, "crawl:a", "crawl", "schedule", __import__("os").getpid())
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO meta (key, value) VALUES ('uncommitted', 'x')")
    print("ready", flush=True)
    time.sleep(120)
""")


def test_the_lock_is_taken_over_after_the_holder_is_killed(tmp_path):
    dbp = tmp_path / "t.db"
    connect(dbp).close()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(dbp)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(ServiceBusyError, match=f"pid {proc.pid} "):
            ServiceLock(dbp, wait_s=0.2).acquire()
        db = connect(dbp, busy_timeout_ms=200, migrate=False)
        assert service_holder(db, dbp).running
        db.close()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    db = connect(dbp)
    holder = service_holder(db, dbp)
    assert not holder.running and holder.pid == proc.pid  # stale row, nobody home
    lock = ServiceLock(dbp)
    lock.acquire()  # taken over safely
    try:
        assert store.read_lock(db)["pid"] == os.getpid()
        (run,) = store.job_runs(db)
        assert run["status"] == "interrupted" and "killed" in run["error"]
        assert db.execute("SELECT COUNT(*) FROM meta WHERE key = 'uncommitted'").fetchone()[0] == 0
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        lock.release()
        db.close()


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "huaxiang.toml"
    cfg.write_text(textwrap.dedent("""
        [schedule]
        analyze = "0 3 1 1 *"
        plan = "manual"
    """), encoding="utf-8")
    return cfg


def _wait_running(dbp: Path, proc: subprocess.Popen, timeout: float = 20) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        if dbp.exists():
            db = connect(dbp, migrate=False)
            try:
                row = store.read_lock(db)
            except Exception:
                row = None
            finally:
                db.close()
            if row and row["pid"] == proc.pid:
                return row
        time.sleep(0.1)
    raise AssertionError("the service did not start")


def test_cli_run_refuses_a_second_scheduler_and_stops_cleanly_on_sigterm(tmp_path, cli):
    dbp = tmp_path / "t.db"
    _config(tmp_path)
    db = connect(dbp)  # analyze ran a moment ago: nothing owed at start
    rid = store.start_job_run(db, "analyze", "analyze", "schedule", 1)
    store.finish_job_run(db, rid, "ok", {})
    db.close()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(dbp), "run"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_running(dbp, proc)
        code, out, err = cli("--db", dbp, "run", "--once")
        assert code == 1
        assert f"another `huaxiang run` is already scheduling {dbp}: pid {proc.pid}" in err
        code, out, _ = cli("--db", dbp, "status")
        assert code == 0 and f"service: running (pid {proc.pid}" in out
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "scheduling 1 job(s)" in out and "huaxiang run: stopped" in out
    code, out, _ = cli("--db", dbp, "status")
    assert "service: not running (start it with" in out


def test_cli_run_after_sigkill_takes_over(tmp_path, cli):
    dbp = tmp_path / "t.db"
    _config(tmp_path)
    db = connect(dbp)
    rid = store.start_job_run(db, "analyze", "analyze", "schedule", 1)
    store.finish_job_run(db, rid, "ok", {})
    db.close()
    cmd = [sys.executable, "-m", "bot", "--db", str(dbp), "run"]
    first = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_running(dbp, first)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    code, out, _ = cli("--db", dbp, "status")
    assert f"not running (last holder pid {first.pid}" in out
    second = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        row = _wait_running(dbp, second)
        assert row["pid"] == second.pid
        second.send_signal(signal.SIGINT)
        out, err = second.communicate(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert second.returncode == 0, err


def test_a_missing_folder_is_a_clear_error(tmp_path, cli):
    code, _, err = cli("--db", tmp_path / "nope" / "x.db", "run", "--once")
    assert code == 1 and f"folder {tmp_path / 'nope'} does not exist" in err


# -- one file, many names (issue 17.1) ------------------------------------------------

def test_a_symlinked_path_is_the_same_database(tmp_path):
    dbp = tmp_path / "conc.db"
    connect(dbp).close()
    (tmp_path / "link.db").symlink_to("conc.db")
    with ServiceLock(dbp):
        with pytest.raises(ServiceBusyError, match="one scheduler per database"):
            ServiceLock(tmp_path / "link.db", wait_s=0.2).acquire()
        db = connect(tmp_path / "link.db")
        assert service_holder(db, tmp_path / "link.db").running
        db.close()


def test_a_relative_and_an_absolute_path_are_the_same_database(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    dbp = tmp_path / "sub" / "t.db"
    connect(dbp).close()
    monkeypatch.chdir(tmp_path / "sub")
    with ServiceLock(Path("t.db")):
        with pytest.raises(ServiceBusyError):
            ServiceLock(dbp.resolve(), wait_s=0.2).acquire()
        with pytest.raises(ServiceBusyError):
            ServiceLock(Path("../sub/./t.db"), wait_s=0.2).acquire()


QUIET_HOLDER = textwrap.dedent("""
    import sys, time
    from bot.service.lock import ServiceLock
    lock = ServiceLock(sys.argv[1], heartbeat_s=1)
    lock.acquire()
    lock.start_heartbeat()
    print("ready", flush=True)
    time.sleep(120)
""")


def test_a_hard_link_is_the_same_database(tmp_path):
    dbp = tmp_path / "conc.db"
    connect(dbp).close()
    os.link(dbp, tmp_path / "hard.db")
    proc = subprocess.Popen([sys.executable, "-c", QUIET_HOLDER, str(dbp)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(ServiceBusyError, match=f"pid {proc.pid} "):
            ServiceLock(tmp_path / "hard.db", wait_s=0.2).acquire()
        db = connect(tmp_path / "hard.db")
        assert service_holder(db, tmp_path / "hard.db").running
        db.close()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with ServiceLock(tmp_path / "hard.db"):   # the holder is gone: taken over at once
        pass


def test_cli_run_through_a_symlink_is_refused(tmp_path):
    dbp = tmp_path / "conc.db"
    _config(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(dbp), "run"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_running(dbp, proc)
        (tmp_path / "link.db").symlink_to("conc.db")
        second = subprocess.run([sys.executable, "-m", "bot", "--db", "link.db", "run"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already scheduling" in second.stderr, second.stderr
        assert f"pid {proc.pid}" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
