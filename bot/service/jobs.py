"""The jobs the service runs, and the runner that records every run.

Why a job is a plain function of a ``JobContext``: the scheduler, ``run
--once`` and the tests all run the same runner, and tests swap in fake job
functions (``jobs={"crawl": fake}``) without touching the scheduling. The
real functions import the other areas lazily, so this module imports even
when an area is not installed yet.

Each run opens its own database connection in the thread that runs it; a
sqlite connection is never shared across threads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite3

from config import Settings
from storage import service as store
from config.times import utcnow
from storage.db import opened, rollback_open

log = logging.getLogger("huaxiang.jobs")

# The order `run --once` and catch-up follow: data first, then what builds on it.
KINDS = ("crawl", "outcomes", "analyze", "plan", "send")


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job. ``id`` is stable across restarts (``crawl:<query>``,
    ``analyze``...), so history and status line up with the config."""

    id: str
    kind: str
    schedule: str
    query: str | None = None


@dataclass
class JobContext:
    db: sqlite3.Connection
    settings: Settings
    spec: JobSpec
    stop: threading.Event
    db_path: Path


@dataclass
class JobOutcome:
    """What a job function reports. A function may also return a plain dict of counts (status ok)."""

    status: str = "ok"                   # ok | partial | failed | interrupted
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


JobFn = Callable[[JobContext], "JobOutcome | dict[str, Any] | None"]


def sending_configured(settings: Settings) -> bool:
    """Send (and collect outcomes of sends) only once a real send mode is chosen."""
    return settings.engagement.send_mode != "dry-run"


def _scheduled(schedule: str) -> bool:
    return schedule.strip() not in ("", "manual")


def job_specs(settings: Settings) -> list[JobSpec]:
    """The jobs the config asks for, in dependency order.

    Each enabled query with a schedule is its own crawl job; outcomes follow
    the send schedule (there is nothing to collect until something is sent).
    """
    specs = [JobSpec(f"crawl:{q.name}", "crawl", q.schedule, q.name)
             for q in settings.queries if q.enabled and _scheduled(q.schedule)]
    sched = settings.schedule
    if sending_configured(settings) and _scheduled(sched.send):
        specs.append(JobSpec("outcomes", "outcomes", sched.send))
    if _scheduled(sched.analyze):
        specs.append(JobSpec("analyze", "analyze", sched.analyze))
    if _scheduled(sched.plan):
        specs.append(JobSpec("plan", "plan", sched.plan))
    if sending_configured(settings) and _scheduled(sched.send):
        specs.append(JobSpec("send", "send", sched.send))
    return specs


def in_dependency_order(specs: list[JobSpec]) -> list[JobSpec]:
    return sorted(specs, key=lambda s: KINDS.index(s.kind))  # stable: config order within a kind


# -- the real job functions -------------------------------------------------

def summary_counts(summary: Any) -> dict[str, Any]:
    """Counts from another area's summary object, whatever its shape."""
    if summary is None:
        return {}
    as_counts = getattr(summary, "as_counts", None)
    if callable(as_counts):
        return dict(as_counts())
    if isinstance(summary, dict):
        return dict(summary)
    if dataclasses.is_dataclass(summary):
        return {k: v for k, v in dataclasses.asdict(summary).items() if isinstance(v, (int, float, str, bool))}
    return {}


def _run_status(run: Any) -> str | None:
    if isinstance(run, dict):
        return run.get("status")
    return getattr(run, "status", None)


def _run_error(run: Any) -> str | None:
    if isinstance(run, dict):
        return run.get("error")
    return getattr(run, "error", None)


def crawl_job(ctx: JobContext) -> JobOutcome:
    from bot.find.crawler import run_crawl

    summary = run_crawl(ctx.db, ctx.settings, [ctx.spec.query] if ctx.spec.query else None, stop=ctx.stop)
    statuses = [s for s in (_run_status(r) for r in getattr(summary, "runs", []) or []) if s]
    errors = [e for e in (_run_error(r) for r in getattr(summary, "runs", []) or []) if e]
    if "interrupted" in statuses or ctx.stop.is_set():
        status = "interrupted"
    elif "failed" in statuses:
        status = "failed"
    elif any(s in ("partial", "blocked", "paused", "skipped") for s in statuses):  # other queries may be fine
        status = "partial"
    else:
        status = "ok"
    error = "; ".join(errors) or (f"crawl run status: {', '.join(sorted(set(statuses)))}" if status in ("failed", "partial") else None)
    return JobOutcome(status, summary_counts(summary), error)


def outcomes_job(ctx: JobContext) -> dict[str, Any]:
    from bot.engage.outcomes import collect_outcomes

    return summary_counts(collect_outcomes(ctx.db, ctx.settings))


def analyze_job(ctx: JobContext) -> dict[str, Any] | JobOutcome:
    from bot.understand.caches import AnalysisInterrupted
    from bot.understand.run import run_analysis

    try:
        return summary_counts(run_analysis(ctx.db, ctx.settings, stop=ctx.stop))
    except AnalysisInterrupted as exc:
        return JobOutcome("interrupted", {}, str(exc))


def plan_job(ctx: JobContext) -> dict[str, Any]:
    from bot.engage.planner import run_plan

    return summary_counts(run_plan(ctx.db, ctx.settings))


def send_job(ctx: JobContext) -> JobOutcome:
    from bot.engage.sender import run_send

    counts = summary_counts(run_send(ctx.db, ctx.settings, stop=ctx.stop))
    return JobOutcome("interrupted" if ctx.stop.is_set() else "ok", counts)


def default_jobs() -> dict[str, JobFn]:
    return {"crawl": crawl_job, "outcomes": outcomes_job, "analyze": analyze_job, "plan": plan_job, "send": send_job}


# -- the runner ---------------------------------------------------------------

class JobRunner:
    """Runs a job spec: its own connection, a job_runs record, one at a time per job.

    ``report`` receives one human-readable line per finished run (the console
    of ``huaxiang run``); ``scrub`` cleans error text before it is logged or
    stored.
    """

    def __init__(self, db_path: str | Path, settings: Settings, jobs: dict[str, JobFn] | None = None,
                 stop: threading.Event | None = None, scrub: Callable[[str], str] | None = None,
                 report: Callable[[str], None] | None = None):
        self.db_path = Path(db_path)
        self.settings = settings
        self.jobs = {**default_jobs(), **(jobs or {})}
        self.stop = stop or threading.Event()
        self.scrub = scrub or (lambda s: s)
        self.report = report or (lambda line: None)
        self._guard = threading.Lock()
        self._running: dict[str, threading.Lock] = {}
        self.last_started: dict[str, float] = {}

    def _job_lock(self, job_id: str) -> threading.Lock:
        with self._guard:
            return self._running.setdefault(job_id, threading.Lock())

    def run(self, spec: JobSpec, trigger: str = "schedule") -> JobOutcome | None:
        """Run once and record it. None when skipped (stopping, or already running)."""
        if self.stop.is_set():
            return None
        lock = self._job_lock(spec.id)
        if not lock.acquire(blocking=False):
            log.info("%s is still running; this start is skipped", spec.id, extra={"job": spec.id})
            return None
        try:
            shared = self._shared_lock(spec)
            if shared is None:
                return self._run_locked(spec, trigger)
            while not shared.acquire(timeout=0.25):  # another query of this source is crawling
                if self.stop.is_set():
                    return None
            try:
                return self._run_locked(spec, trigger)
            finally:
                shared.release()
        finally:
            lock.release()

    def _shared_lock(self, spec: JobSpec) -> threading.Lock | None:
        """Crawls of one source take turns: each crawl has its own polite
        client, so two at once would double the request rate to that host."""
        if spec.kind != "crawl" or not spec.query:
            return None
        try:
            source = self.settings.query(spec.query).source
        except KeyError:
            return None
        return self._job_lock(f"source:{source}")

    def _run_locked(self, spec: JobSpec, trigger: str) -> JobOutcome:
        fn = self.jobs[spec.kind]
        self.last_started[spec.id] = time.time()
        with opened(self.db_path, self.settings.database.busy_timeout_ms) as db:
            run_id = store.start_job_run(db, spec.id, spec.kind, trigger, os.getpid())
            log.info("%s started (%s)", spec.id, trigger, extra={"job": spec.id, "run_id": run_id})
            outcome = self._outcome(fn, db, spec)
            rollback_open(db)  # a job that died mid-transaction leaves nothing half-written
            store.finish_job_run(db, run_id, outcome.status, outcome.counts, outcome.error)
        counts = ", ".join(f"{k} {v}" for k, v in outcome.counts.items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool) and v)
        line = f"{utcnow()} {spec.id}: {outcome.status}" + (f" ({counts})" if counts else "") + \
            (f" - {outcome.error}" if outcome.error else "")
        level = {"ok": logging.INFO, "failed": logging.ERROR}.get(outcome.status, logging.WARNING)
        log.log(level, "%s %s%s", spec.id, outcome.status, f": {outcome.error}" if outcome.error else "",
                extra={"job": spec.id, "run_id": run_id})
        self.report(line)
        return outcome

    def _outcome(self, fn: JobFn, db: sqlite3.Connection, spec: JobSpec) -> JobOutcome:
        """Run the job function; whatever it raises or returns becomes a
        recordable outcome with a known status and a scrubbed error."""
        try:
            result = fn(JobContext(db=db, settings=self.settings, spec=spec, stop=self.stop, db_path=self.db_path))
            outcome = result if isinstance(result, JobOutcome) else JobOutcome("ok", dict(result or {}))
        except Exception as exc:
            message = self.scrub(f"{type(exc).__name__}: {exc}")
            log.debug("%s traceback", spec.id, exc_info=True, extra={"job": spec.id})
            outcome = JobOutcome("failed", {}, message)
        if outcome.status not in store.JOB_STATUSES or outcome.status == "running":
            outcome = JobOutcome("partial", outcome.counts, f"job reported status {outcome.status!r}"
                                 + (f": {outcome.error}" if outcome.error else ""))
        if outcome.error:
            outcome.error = self.scrub(outcome.error)
        return outcome


def run_once(db_path: str | Path, settings: Settings, jobs: dict[str, JobFn] | None = None,
             stop: threading.Event | None = None, report: Callable[[str], None] | None = None,
             scrub: Callable[[str], str] | None = None) -> list[tuple[JobSpec, JobOutcome | None]]:
    """Every configured job once, in dependency order (``huaxiang run --once``).

    A failing job does not stop the ones after it: analysis of yesterday's
    data is still worth doing when today's crawl of one source was blocked.
    The caller holds the service lock.
    """
    runner = JobRunner(db_path, settings, jobs, stop=stop, scrub=scrub, report=report)
    done = []
    for spec in in_dependency_order(job_specs(settings)):
        if runner.stop.is_set():
            break
        done.append((spec, runner.run(spec, trigger="once")))
    return done
