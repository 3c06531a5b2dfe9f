"""``huaxiang run``: the scheduler that keeps crawling, analysing, planning
and sending while nobody watches.

Why it is built this way:
- the schedule is configuration: jobs are rebuilt from the config at every
  start with stable ids, in APScheduler's in-memory store; what ran is data,
  kept in ``job_runs`` in our own database (nothing pickled);
- ``coalesce=True``, ``max_instances=1`` and a misfire grace of minutes mean
  a busy or briefly stalled machine runs a late job once, never a pile-up;
- a job whose slot passed while the service was down (or that has never
  run) runs once at start - one catch-up, not one per missed slot - and the
  catch-ups run in dependency order (crawl, outcomes, analyze, plan, send);
- the first SIGINT/SIGTERM asks jobs to stop (the crawler checkpoints its
  page), waits for them, records and releases the lock; a second one closes
  the run records and exits at once. Every write is a SQLite transaction, so
  an exit at any instant leaves no half-written rows.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config import Settings
from config import configured_secrets
from config.times import parse_stored, to_stored
from storage import service as store
from storage.db import opened
from bot.errors import HuaxiangError
from bot.service.jobs import JobFn, JobRunner, JobSpec, in_dependency_order, job_specs, run_once
from bot.logs import SecretFilter, scrub
from bot.service.lock import DEFAULT_HEARTBEAT_S, ServiceLock

log = logging.getLogger("huaxiang.service")

_EVERY = re.compile(r"^every\s+(\d+)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_every(schedule: str) -> timedelta | None:
    """``every 30m`` -> 30 minutes; None for a crontab line."""
    m = _EVERY.match(schedule.strip())
    if not m:
        return None
    return timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)])


def schedule_timezone(settings: Settings) -> ZoneInfo:
    """Crontab lines are read in the campaign's time zone ([engagement].timezone),
    so '0 9 * * *' means 9 o'clock where the audience lives, whatever the server's zone."""
    try:
        return ZoneInfo(settings.engagement.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise HuaxiangError(f"{settings.origin}: engagement.timezone: unknown time zone {settings.engagement.timezone!r}") from None


def make_trigger(schedule: str, tz: ZoneInfo, start_date: datetime | None = None) -> BaseTrigger:
    every = parse_every(schedule)
    if every is not None:
        if every.total_seconds() <= 0:
            raise HuaxiangError(f"schedule {schedule!r}: the interval must be more than 0")
        return IntervalTrigger(seconds=int(every.total_seconds()), start_date=start_date, timezone=tz)
    return CronTrigger.from_crontab(schedule, timezone=tz)


def first_fire_after(schedule: str, ref: datetime, tz: ZoneInfo) -> datetime:
    """The first slot strictly after ``ref``."""
    every = parse_every(schedule)
    if every is not None:
        return ref + every
    trigger = CronTrigger.from_crontab(schedule, timezone=tz)
    return trigger.get_next_fire_time(None, ref + timedelta(microseconds=1))


def due_at_start(specs: list[JobSpec], last_started: dict[str, datetime | None], now: datetime,
                 tz: ZoneInfo) -> list[JobSpec]:
    """Jobs owed a run at start, in dependency order: never run, or a slot
    passed since the last finished run. However many slots passed, it is one run."""
    due = []
    for spec in specs:
        last = last_started.get(spec.id)
        if last is None or first_fire_after(spec.schedule, last, tz) <= now:
            due.append(spec)
    return in_dependency_order(due)


def collect_secrets(settings: Settings) -> tuple[str, ...]:
    """Every configured cookie and token, so logs and stored errors can mask them."""
    return configured_secrets(settings)


def install_secret_scrubbing(secrets: tuple[str, ...]) -> None:
    """Teach the handlers ``bot.logs`` installed about the configured secrets."""
    if not secrets:
        return
    for handler in logging.getLogger().handlers:
        for flt in handler.filters:
            if isinstance(flt, SecretFilter):
                flt.secrets = tuple(dict.fromkeys((*flt.secrets, *secrets)))


class Service:
    """The scheduler for one database. ``jobs`` overrides job functions by kind
    (tests); ``clock`` supplies "now" for the catch-up decision (tests)."""

    def __init__(self, db_path: str | Path, settings: Settings, jobs: dict[str, JobFn] | None = None,
                 clock: Callable[[], datetime] | None = None, workers: int | None = None,
                 heartbeat_s: float = DEFAULT_HEARTBEAT_S, report: Callable[[str], None] | None = None):
        self.db_path = Path(db_path)
        self.settings = settings
        self.clock = clock or utc_now
        self.tz = schedule_timezone(settings)
        self.specs = job_specs(settings)
        self.heartbeat_s = heartbeat_s
        # A thread per job: a crawl waiting for its source's turn never holds up analyze or send.
        self.workers = workers or min(len(self.specs) + 1, 32)
        self.report = report or (lambda line: None)
        self.secrets = collect_secrets(settings)
        self.stop = threading.Event()
        self.runner = JobRunner(self.db_path, settings, jobs, stop=self.stop,
                                scrub=lambda text: scrub(text, self.secrets), report=self.report)
        self.lock = ServiceLock(self.db_path, settings.database.busy_timeout_ms, heartbeat_s=heartbeat_s)
        self.scheduler: BackgroundScheduler | None = None
        self.catch_up: list[JobSpec] = []
        self._signals = 0
        self._old_handlers: dict[int, Any] = {}

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        """Take the lock, decide catch-up, schedule every job, start the heartbeat."""
        install_secret_scrubbing(self.secrets)
        self.lock.acquire()
        try:
            self._start_locked()
        except BaseException:
            if self.scheduler is not None and self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            self.lock.release()
            raise

    def _start_locked(self) -> None:
        with opened(self.db_path, self.settings.database.busy_timeout_ms) as db:
            last = {job: parse_stored(at) for job, at in store.last_finished_starts(db).items()}
        now = self.clock()
        self.catch_up = due_at_start(self.specs, last, now, self.tz)
        grace = int(self.settings.schedule.misfire_grace_s)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(self.workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
            timezone=self.tz,
        )
        owed = {s.id for s in self.catch_up}
        real_now = utc_now()
        for spec in self.specs:
            start = None
            every = parse_every(spec.schedule)
            if every is not None:
                prev = last.get(spec.id)
                # Keep the cadence across restarts; after a catch-up, count from now.
                start = real_now + every if spec.id in owed or prev is None else max(prev + every, real_now + timedelta(seconds=1))
            self.scheduler.add_job(self._fire, make_trigger(spec.schedule, self.tz, start), args=[spec],
                                   id=spec.id, name=spec.id, replace_existing=True)
        if self.catch_up:
            self.scheduler.add_job(self._run_catch_up, "date", run_date=real_now, args=[list(self.catch_up)],
                                   id="catch-up", name="catch-up", misfire_grace_time=None)
        self.scheduler.start()
        self._publish()
        self.lock.start_heartbeat(on_beat=self._publish, on_lost=self.request_stop)
        log.info("service started for %s with %d job(s); catch-up: %s", self.db_path, len(self.specs),
                 ", ".join(s.id for s in self.catch_up) or "none")

    def _fire(self, spec: JobSpec) -> None:
        self.runner.run(spec, trigger="schedule")
        self.lock.poke()

    def _run_catch_up(self, specs: list[JobSpec]) -> None:
        began = time.time()
        for spec in specs:
            if self.stop.is_set():
                return
            if self.runner.last_started.get(spec.id, 0) >= began:
                continue  # its own schedule already ran it since we started
            self.runner.run(spec, trigger="catch-up")
        self.lock.poke()

    def next_runs(self) -> dict[str, datetime | None]:
        if self.scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs() if job.id != "catch-up"}

    def _publish(self, db: sqlite3.Connection | None = None) -> None:
        """Store the next run times for ``status`` (on the heartbeat's connection, or one of its own)."""
        if db is None:
            with opened(self.db_path, self.settings.database.busy_timeout_ms, migrate=False) as own:
                self._publish(own)
            return
        nxt = self.next_runs()
        rows = []
        for spec in self.specs:
            t = nxt.get(spec.id)
            rows.append((spec.id, spec.kind, spec.schedule,
                         None if t is None else to_stored(t)))
        store.save_schedule(db, rows)

    def request_stop(self) -> None:
        """Ask running jobs to stop at their next safe point; start no new ones."""
        self.stop.set()

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling, wait for running jobs (they checkpoint), release the lock."""
        self.request_stop()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        self.lock.stop_heartbeat()
        try:
            with opened(self.db_path, self.settings.database.busy_timeout_ms, migrate=False) as db:
                store.clear_schedule(db)
                self.lock.release(db)
        finally:
            self.lock.release()  # no-op when already released
        log.info("service stopped")

    def hard_stop(self) -> None:
        """The second signal: close our run records and the lock as fast as the
        database allows, then the caller exits. Unfinished transactions in job
        threads simply never commit."""
        self.stop.set()
        try:
            with opened(self.db_path, 2000, migrate=False) as db:
                store.interrupt_running_jobs(db, "stopped at once by a second signal", pid=os.getpid())
                store.clear_schedule(db)
                self.lock.release(db)
        except Exception as exc:  # the next start takes over whatever is left
            log.warning("could not close the run records before exiting: %s", exc)

    # -- foreground -------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            log.warning("%s: stopping after the current page (send the signal again to stop at once)", name)
            self.request_stop()
        else:
            log.warning("%s again: stopping now", name)
            self.hard_stop()
            os._exit(130)

    def serve(self, install_signals: bool = True, on_started: Callable[[], None] | None = None) -> int:
        """Run in the foreground until SIGINT/SIGTERM. Returns the exit code."""
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            self.start()
            if on_started is not None:
                on_started()
            while not self.stop.wait(0.5):
                pass
            self.shutdown(wait=True)
            return 0
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            self._old_handlers.clear()


def run_once_locked(db_path: str | Path, settings: Settings, jobs: dict[str, JobFn] | None = None,
                    report: Callable[[str], None] | None = None, install_signals: bool = True,
                    heartbeat_s: float = DEFAULT_HEARTBEAT_S) -> list[tuple[JobSpec, Any]]:
    """``run --once``: take the service lock, run every job once in dependency
    order, release. SIGINT/SIGTERM stop it the same way as the service."""
    secrets = collect_secrets(settings)
    install_secret_scrubbing(secrets)
    schedule_timezone(settings)
    lock = ServiceLock(db_path, settings.database.busy_timeout_ms, heartbeat_s=heartbeat_s)
    stop = threading.Event()
    state = {"signals": 0}
    old: dict[int, Any] = {}

    def on_signal(signum: int, frame: Any) -> None:
        state["signals"] += 1
        if state["signals"] == 1:
            log.warning("%s: stopping after the current page", signal.Signals(signum).name)
            stop.set()
        else:
            try:
                with opened(db_path, 2000, migrate=False) as db:
                    store.interrupt_running_jobs(db, "stopped at once by a second signal", pid=os.getpid())
                    lock.release(db)
            except Exception as exc:
                log.warning("could not close the run records before exiting: %s", exc)
            os._exit(130)

    lock.acquire()
    lock.start_heartbeat()
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, on_signal)
    try:
        return run_once(db_path, settings, jobs, stop=stop, report=report, scrub=lambda t: scrub(t, secrets))
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        lock.stop_heartbeat()
        lock.release()
