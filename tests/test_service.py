"""The scheduler with fake jobs: order, catch-up, overlap, shutdown, history."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import make_settings
from storage import service as store
from storage.db import connect
from bot.service.jobs import JobOutcome, JobSpec, job_specs, run_once
from bot.service.scheduler import Service, due_at_start, first_fire_after, make_trigger, parse_every
from bot.service.lock import ServiceLock

UTC = timezone.utc
SH = ZoneInfo("Asia/Shanghai")


def campaign(queries=(("a", "every 1h"), ("b", "every 1h")), analyze="0 * * * *", plan="15 * * * *",
             send="*/10 * * * *", send_mode="dry-run", **extra):
    raw = {
        "sources": [{"name": "sb", "platform": "sandbox", "base_url": "http://127.0.0.1:9"}],
        "queries": [{"name": n, "source": "sb", "kind": "keyword", "value": n, "schedule": s} for n, s in queries],
        "schedule": {"analyze": analyze, "plan": plan, "send": send, "misfire_grace_s": 120},
        "engagement": {"send_mode": send_mode},
    }
    raw.update(extra)
    return make_settings(raw)


class Recorder:
    """Fake job functions that note what ran, when, and how many at once."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[tuple[str, str]] = []
        self.delay = delay
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}

    def fn(self, ctx):
        job = ctx.spec.id
        with self.lock:
            self.active[job] = self.active.get(job, 0) + 1
            self.max_active[job] = max(self.max_active.get(job, 0), self.active[job])
            self.calls.append((job, threading.current_thread().name))
            crawls = sum(n for j, n in self.active.items() if j.startswith("crawl:"))
            self.max_crawls = max(getattr(self, "max_crawls", 0), crawls)
            self.max_total = max(getattr(self, "max_total", 0), sum(self.active.values()))
        try:
            if self.delay:
                ctx.stop.wait(self.delay)
            # A real write through the job's own connection.
            ctx.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"ran:{job}", "1"))
            return {"items": 1}
        finally:
            with self.lock:
                self.active[job] -= 1

    def jobs(self):
        return {k: self.fn for k in ("crawl", "outcomes", "analyze", "plan", "send")}

    def order(self):
        return [c[0] for c in self.calls]


def wait_for(cond, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def runs(db_path, job=None):
    db = connect(db_path)
    try:
        return list(reversed(store.job_runs(db, job)))
    finally:
        db.close()


def seed_history(db_path, job, started_at, status="ok", kind="crawl"):
    db = connect(db_path)
    rid = store.start_job_run(db, job, kind, "schedule", 1, now=started_at.isoformat(timespec="seconds"))
    store.finish_job_run(db, rid, status, {}, None, now=started_at.isoformat(timespec="seconds"))
    db.close()


# -- the job list ------------------------------------------------------------

def test_job_specs_have_stable_ids_in_dependency_order_and_send_only_when_configured():
    dry = job_specs(campaign())
    assert [s.id for s in dry] == ["crawl:a", "crawl:b", "analyze", "plan"]
    live = job_specs(campaign(send_mode="sandbox"))
    assert [s.id for s in live] == ["crawl:a", "crawl:b", "outcomes", "analyze", "plan", "send"]
    manual = job_specs(campaign(queries=(("a", "manual"), ("b", "every 5m")), plan="manual"))
    assert [s.id for s in manual] == ["crawl:b", "analyze"]
    assert job_specs(campaign()) == dry  # rebuilt from config, same ids every start


def test_schedules_become_triggers():
    assert parse_every("every 30m") == timedelta(minutes=30)
    assert parse_every("every 2 h") == timedelta(hours=2)
    assert parse_every("*/5 * * * *") is None
    t = make_trigger("0 9 * * *", SH)
    fire = t.get_next_fire_time(None, datetime(2026, 1, 1, 2, 0, tzinfo=UTC))
    assert fire.astimezone(SH).hour == 9  # crontab lines are read in the campaign's zone


# -- run --once --------------------------------------------------------------

def test_run_once_runs_every_job_once_in_dependency_order(tmp_path):
    rec = Recorder()
    done = run_once(tmp_path / "t.db", campaign(send_mode="sandbox"), rec.jobs())
    assert rec.order() == ["crawl:a", "crawl:b", "outcomes", "analyze", "plan", "send"]
    assert [o.status for _, o in done] == ["ok"] * 6
    history = runs(tmp_path / "t.db")
    assert [(r["job"], r["trigger"], r["status"], r["counts"]) for r in history] == [
        (j, "once", "ok", {"items": 1}) for j in rec.order()]
    assert all(r["ended_at"] >= r["started_at"] for r in history)


def test_a_failing_job_is_recorded_and_the_rest_still_run(tmp_path):
    rec = Recorder()

    def broken(ctx):
        ctx.db.execute("BEGIN IMMEDIATE")
        ctx.db.execute("INSERT INTO meta (key, value) VALUES ('half', 'written')")
        raise RuntimeError("source exploded")

    jobs = {**rec.jobs(), "crawl": broken}
    done = run_once(tmp_path / "t.db", campaign(), jobs)
    assert [(s.id, o.status) for s, o in done] == [("crawl:a", "failed"), ("crawl:b", "failed"), ("analyze", "ok"), ("plan", "ok")]
    history = {r["job"]: r for r in runs(tmp_path / "t.db")}
    assert history["crawl:a"]["error"] == "RuntimeError: source exploded"
    db = connect(tmp_path / "t.db")
    assert db.execute("SELECT COUNT(*) FROM meta WHERE key = 'half'").fetchone()[0] == 0  # rolled back
    db.close()


# -- catch-up decision with a fake clock -------------------------------------------

def test_catch_up_after_downtime_is_one_run_not_one_per_missed_slot():
    specs = [JobSpec("crawl:a", "crawl", "*/10 * * * *", "a"), JobSpec("analyze", "analyze", "0 * * * *"),
             JobSpec("plan", "plan", "every 1d")]
    last_run = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    # Down for 5.5 hours: 33 crawl slots and 5 analyze slots were missed.
    now = last_run + timedelta(hours=5, minutes=30)
    due = due_at_start(specs, {s.id: last_run for s in specs}, now, SH)
    assert [s.id for s in due] == ["crawl:a", "analyze"]  # once each; plan's day has not passed
    # Back after 5 minutes: nothing missed.
    assert due_at_start(specs, {s.id: last_run for s in specs}, last_run + timedelta(minutes=5), SH) == []
    # Never run: owed at start.
    assert [s.id for s in due_at_start(specs, {}, now, SH)] == ["crawl:a", "analyze", "plan"]
    assert first_fire_after("0 * * * *", last_run, SH) == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def test_service_catches_up_once_at_start_in_dependency_order(tmp_path):
    dbp = tmp_path / "t.db"
    now = datetime.now(UTC)
    # Slots far away so only catch-up fires during the test.
    settings = campaign(queries=(("a", "0 3 1 1 *"), ("b", "0 3 1 1 *")), analyze="0 3 1 1 *", plan="every 1d",
                        send="0 3 1 1 *", send_mode="sandbox")
    connect(dbp).close()
    seed_history(dbp, "crawl:a", now - timedelta(days=400))          # a yearly slot passed: owed
    seed_history(dbp, "crawl:b", now - timedelta(minutes=1))           # ran recently: not owed
    seed_history(dbp, "plan", now - timedelta(days=3), kind="plan")    # three daily slots missed: one run
    seed_history(dbp, "analyze", now - timedelta(days=3), status="interrupted", kind="analyze")  # unfinished: owed
    rec = Recorder()
    svc = Service(dbp, settings, rec.jobs(), heartbeat_s=0.2)
    svc.start()
    try:
        assert [s.id for s in svc.catch_up] == ["crawl:a", "outcomes", "analyze", "plan", "send"]
        assert wait_for(lambda: len(rec.calls) >= 5)
        time.sleep(0.5)
    finally:
        svc.shutdown()
    assert rec.order() == ["crawl:a", "outcomes", "analyze", "plan", "send"]
    caught = [r for r in runs(dbp) if r["trigger"] == "catch-up"]
    assert [r["job"] for r in caught] == rec.order()
    # A restart right away owes nothing.
    rec2 = Recorder()
    svc2 = Service(dbp, settings, rec2.jobs(), heartbeat_s=0.2)
    svc2.start()
    try:
        assert svc2.catch_up == []
        time.sleep(0.3)
    finally:
        svc2.shutdown()
    assert rec2.calls == []


def test_service_with_short_intervals_fires_jobs_without_overlap(tmp_path):
    dbp = tmp_path / "t.db"
    settings = campaign(queries=(("a", "every 1s"), ("b", "every 1s")), analyze="every 1s", plan="every 1s")
    connect(dbp).close()
    now = datetime.now(UTC)
    for job, kind in (("crawl:a", "crawl"), ("crawl:b", "crawl"), ("analyze", "analyze"), ("plan", "plan")):
        seed_history(dbp, job, now, kind=kind)  # nothing owed, so only the intervals fire
    rec = Recorder(delay=1.6)  # slower than its interval: max_instances=1 and coalesce must hold
    svc = Service(dbp, settings, rec.jobs(), heartbeat_s=0.2, workers=6)
    svc.start()
    try:
        for job in svc.scheduler.get_jobs():
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 120)
        assert {j.id for j in svc.scheduler.get_jobs()} == {"crawl:a", "crawl:b", "analyze", "plan"}
        assert wait_for(lambda: all(rec.order().count(j) >= 2 for j in ("crawl:a", "crawl:b", "analyze", "plan")),
                        timeout=15)
    finally:
        svc.shutdown()
    assert set(rec.max_active.values()) == {1}
    history = runs(dbp)
    assert all(r["status"] in ("ok", "interrupted") for r in history)
    by_schedule = [r["job"] for r in history if r["trigger"] == "schedule" and r["pid"] != 1]
    assert all(by_schedule.count(j) >= 1 for j in ("crawl:a", "crawl:b", "analyze", "plan"))
    # Parallel jobs each ran in a worker thread with its own connection.
    assert all(name != "MainThread" for _, name in rec.calls)


def test_shutdown_stops_a_running_job_records_it_and_releases_the_lock(tmp_path):
    dbp = tmp_path / "t.db"
    settings = campaign(queries=(("a", "every 1h"),), analyze="manual", plan="manual")
    started = threading.Event()

    def long_crawl(ctx):
        started.set()
        ctx.db.execute("INSERT INTO meta (key, value) VALUES ('page', '1')")
        ctx.stop.wait(30)  # a real crawl checkpoints its page here
        return JobOutcome("interrupted", {"pages": 1}, "stopped by shutdown")

    svc = Service(dbp, settings, {"crawl": long_crawl}, heartbeat_s=0.2)
    svc.start()
    assert started.wait(10)
    t0 = time.monotonic()
    svc.shutdown()
    assert time.monotonic() - t0 < 10
    (run,) = runs(dbp)
    assert (run["job"], run["status"], run["counts"]) == ("crawl:a", "interrupted", {"pages": 1})
    db = connect(dbp)
    assert store.read_lock(db) is None and store.load_schedule(db) == {}
    db.close()
    with ServiceLock(dbp):
        pass  # free again
    # The interrupted run is owed: the next start resumes it.
    svc2 = Service(dbp, settings, {"crawl": lambda ctx: {"resumed": 1}}, heartbeat_s=0.2)
    svc2.start()
    try:
        assert [s.id for s in svc2.catch_up] == ["crawl:a"]
        assert wait_for(lambda: len(runs(dbp)) == 2 and runs(dbp)[-1]["status"] == "ok")
    finally:
        svc2.shutdown()


def test_heartbeat_and_published_schedule_while_running(tmp_path):
    dbp = tmp_path / "t.db"
    settings = campaign(queries=(("a", "every 1h"),))
    connect(dbp).close()
    seed_history(dbp, "crawl:a", datetime.now(UTC), kind="crawl")
    seed_history(dbp, "analyze", datetime.now(UTC), kind="analyze")
    seed_history(dbp, "plan", datetime.now(UTC), kind="plan")
    svc = Service(dbp, settings, Recorder().jobs(), heartbeat_s=0.1)
    svc.start()
    try:
        db = connect(dbp)
        first = store.read_lock(db)["heartbeat_at"]
        sched = store.load_schedule(db)
        assert set(sched) == {"crawl:a", "analyze", "plan"}
        nxt = datetime.fromisoformat(sched["crawl:a"]["next_run_at"])
        assert timedelta(minutes=58) < nxt - datetime.now(UTC) <= timedelta(hours=1, seconds=5)  # cadence kept
        assert wait_for(lambda: store.read_lock(db)["heartbeat_at"] != first, timeout=5)
        db.close()
    finally:
        svc.shutdown()


def test_crawls_of_one_source_take_turns_while_other_jobs_run_alongside(tmp_path):
    dbp = tmp_path / "t.db"
    settings = campaign(queries=(("a", "every 1s"), ("b", "every 1s")), analyze="every 1s", plan="manual")
    connect(dbp).close()
    now = datetime.now(UTC)
    for job, kind in (("crawl:a", "crawl"), ("crawl:b", "crawl"), ("analyze", "analyze")):
        seed_history(dbp, job, now, kind=kind)
    rec = Recorder(delay=0.4)
    svc = Service(dbp, settings, rec.jobs(), heartbeat_s=0.2)
    svc.start()
    try:
        assert wait_for(lambda: all(rec.order().count(j) >= 2 for j in ("crawl:a", "crawl:b", "analyze")), timeout=15)
    finally:
        svc.shutdown()
    assert rec.max_crawls == 1   # one polite client per host at a time
    assert rec.max_total >= 2    # but analyze ran beside a crawl


def test_the_catch_up_decision_follows_the_injected_clock(tmp_path):
    dbp = tmp_path / "t.db"
    settings = campaign(queries=(("a", "every 1h"),), analyze="0 * * * *", plan="manual")
    connect(dbp).close()
    now = datetime.now(UTC)
    seed_history(dbp, "crawl:a", now, kind="crawl")
    seed_history(dbp, "analyze", now, kind="analyze")
    rec = Recorder()
    # Pretend the service was down for a day and a half: one catch-up each, in order.
    svc = Service(dbp, settings, rec.jobs(), clock=lambda: now + timedelta(hours=36), heartbeat_s=0.2)
    svc.start()
    try:
        assert wait_for(lambda: len(rec.calls) >= 2)
        time.sleep(0.3)
    finally:
        svc.shutdown()
    assert rec.order() == ["crawl:a", "analyze"]
    assert [r["trigger"] for r in runs(dbp) if r["pid"] != 1] == ["catch-up", "catch-up"]
