"""One scheduler per database.

Two mechanisms, because each covers the other's blind spot:

- an OS file lock (``flock``) on ``<db>.service.lock`` beside the database.
  The kernel drops it the moment the holder dies, even by SIGKILL, so a stale
  lock from a killed process is taken over without guessing;
- a lock row in the database with a heartbeat, so ``huaxiang status`` can say
  who runs the service and since when, and so a scheduler on another machine
  sharing the file (where ``flock`` may not reach) is still refused while its
  heartbeat is fresh.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite3

from config.times import UTC, parse_stored
from bot.errors import HuaxiangError
from storage import service as store
from storage.db import opened

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 10.0


class ServiceBusyError(HuaxiangError):
    """Another scheduler already runs against this database."""


def lock_file_for(db_path: str | Path) -> Path:
    """The lock file beside the database file itself: symlinks and relative
    paths are resolved first, so ``link.db`` -> ``conc.db`` or ``./conc.db``
    vs ``/srv/conc.db`` all lock the same file. (A hard link has no path to
    resolve to; ``_alive_here`` covers it through the lock row.)"""
    p = Path(os.path.realpath(db_path))
    return p.with_name(p.name + ".service.lock")


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:        # alive, owned by another user
        return True
    except OverflowError:
        return False
    return True


def _alive_here(row: dict[str, Any], heartbeat_s: float) -> bool:
    """A holder on this host that still runs and beats, and is not us.

    The file lock alone cannot see a scheduler that opened the same database
    through another name (a hard link, a bind mount): their lock files
    differ. The lock row lives in the database itself, so it is shared by
    every name; a fresh heartbeat from a live pid means a scheduler runs.
    """
    if row["host"] != socket.gethostname() or row["pid"] == os.getpid():
        return False
    age = _age_s(row["heartbeat_at"])
    return age is not None and age < stale_after(heartbeat_s) and _pid_alive(row["pid"])


def _age_s(iso: str | None, now: datetime | None = None) -> float | None:
    then = parse_stored(iso)
    if then is None:
        return None
    return ((now or datetime.now(UTC)) - then).total_seconds()


@dataclass
class Holder:
    """Who holds (or last held) the service lock."""

    running: bool
    pid: int | None = None
    host: str | None = None
    started_at: str | None = None
    heartbeat_at: str | None = None
    heartbeat_age_s: float | None = None

    def describe(self) -> str:
        if self.pid is None:
            return "an unknown process"
        age = "" if self.heartbeat_age_s is None else f", heartbeat {self.heartbeat_age_s:.0f}s ago"
        return f"pid {self.pid} on {self.host} (started {self.started_at}{age})"


def _flock_held_elsewhere(path: Path) -> bool:
    """True when another process holds the file lock. Probes with a shared lock
    so the probe itself never looks like a scheduler."""
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def service_holder(db: sqlite3.Connection, db_path: str | Path, heartbeat_s: float = DEFAULT_HEARTBEAT_S) -> Holder:
    """Is a scheduler running against this database, and who is it?"""
    row = store.read_lock(db)
    held = _flock_held_elsewhere(lock_file_for(db_path))
    if row is None:
        return Holder(running=held)
    age = _age_s(row["heartbeat_at"])
    fresh = age is not None and age < stale_after(heartbeat_s)
    remote = row["host"] != socket.gethostname()
    running = held or (remote and fresh) or _alive_here(row, heartbeat_s)
    return Holder(running=running, pid=row["pid"], host=row["host"], started_at=row["started_at"],
                  heartbeat_at=row["heartbeat_at"], heartbeat_age_s=age)


def stale_after(heartbeat_s: float) -> float:
    """A heartbeat older than this means its writer is gone."""
    return max(6 * heartbeat_s, 30.0)


class ServiceLock:
    """Hold with ``acquire()`` / ``release()`` (or as a context manager)."""

    def __init__(self, db_path: str | Path, busy_timeout_ms: int = 30_000, heartbeat_s: float = DEFAULT_HEARTBEAT_S,
                 wait_s: float = 1.0):
        self.db_path = Path(db_path)
        self.path = lock_file_for(db_path)
        self.busy_timeout_ms = busy_timeout_ms
        self.heartbeat_s = heartbeat_s
        self.wait_s = wait_s
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.token = uuid.uuid4().hex
        self._fd: int | None = None
        self._wake = threading.Event()
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _busy(self, db: sqlite3.Connection | None) -> ServiceBusyError:
        holder = service_holder(db, self.db_path, self.heartbeat_s) if db is not None else Holder(running=True)
        if holder.pid is None:
            try:
                pid = int(self.path.read_text().split()[0])
                holder.pid, holder.host = pid, self.host
            except (OSError, ValueError, IndexError):
                pass
        return ServiceBusyError(
            f"another `huaxiang run` is already scheduling {self.db_path}: {holder.describe()}; "
            "stop it first (one scheduler per database)"
        )

    def acquire(self) -> None:
        """Take the lock or raise ServiceBusyError naming the holder."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if not self.path.parent.is_dir():
                raise HuaxiangError(f"{self.db_path}: folder {self.path.parent} does not exist") from None
            raise HuaxiangError(f"{self.path}: cannot create the service lock file ({exc.strerror})") from None
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # A status probe holds a shared lock for microseconds; a real
                # scheduler holds it for good. Wait briefly to tell them apart.
                if time.monotonic() >= deadline:
                    os.close(fd)
                    with opened(self.db_path, self.busy_timeout_ms) as db:
                        raise self._busy(db) from None
                time.sleep(0.05)
        try:
            with opened(self.db_path, self.busy_timeout_ms) as db:
                limit = stale_after(self.heartbeat_s)

                def may_take(row: dict[str, Any]) -> bool:
                    # We hold the file lock, so a holder on this host is dead,
                    # unless it reached the same file by another name.
                    if row["host"] == self.host:
                        return not _alive_here(row, self.heartbeat_s)
                    age = _age_s(row["heartbeat_at"])
                    return age is None or age >= limit

                blocker = store.claim_lock(db, self.pid, self.host, self.token, may_take)
                if blocker is not None:
                    raise self._busy(db)
                stale = store.interrupt_running_jobs(db, "the service stopped before this run finished (killed or crashed)")
                if stale:
                    log.warning("took over the service lock; marked %d unfinished job run(s) interrupted", stale)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.pid} {self.host} {self.token}\n".encode(), 0)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._fd = fd

    def beat(self, db: sqlite3.Connection) -> bool:
        """Refresh the heartbeat (call from any thread with that thread's connection)."""
        ok = store.heartbeat_lock(db, self.token)
        if not ok:
            log.error("the service lock row was taken by another process; this scheduler should stop")
        return ok

    def start_heartbeat(self, on_beat: Callable[[sqlite3.Connection], None] | None = None,
                        on_lost: Callable[[], None] | None = None) -> None:
        """Refresh the heartbeat every ``heartbeat_s`` in a thread with its own
        connection; ``on_beat(db)`` runs after each beat (the service publishes
        its next run times there), ``on_lost()`` if the row was taken."""
        def loop() -> None:
            with opened(self.db_path, self.busy_timeout_ms, migrate=False) as db:
                while not self._hb_stop.is_set():
                    self._wake.wait(self.heartbeat_s)
                    self._wake.clear()
                    if self._hb_stop.is_set():
                        break
                    try:
                        if not self.beat(db):
                            if on_lost is not None:
                                on_lost()
                            break
                        if on_beat is not None:
                            on_beat(db)
                    except Exception as exc:  # a busy moment must not kill the heartbeat
                        log.warning("service heartbeat failed: %s", exc)

        self._hb_stop.clear()
        self._hb_thread = threading.Thread(target=loop, name="huaxiang-heartbeat", daemon=True)
        self._hb_thread.start()

    def poke(self) -> None:
        """Beat now rather than at the next interval."""
        self._wake.set()

    def stop_heartbeat(self) -> None:
        self._hb_stop.set()
        self._wake.set()
        if self._hb_thread is not None and self._hb_thread is not threading.current_thread():
            self._hb_thread.join(timeout=30)
        self._hb_thread = None

    def release(self, db: sqlite3.Connection | None = None, busy_timeout_ms: int | None = None) -> None:
        """Delete our row, then drop the file lock. Safe to call twice."""
        self._hb_stop.set()
        self._wake.set()
        if self._fd is None:
            return
        try:
            if db is None:
                with opened(self.db_path, busy_timeout_ms or self.busy_timeout_ms, migrate=False) as own:
                    store.release_lock(own, self.token)
            else:
                store.release_lock(db, self.token)
        except Exception as exc:  # the file lock still goes; a leftover row is taken over later
            log.warning("could not remove the service lock row: %s", exc)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ServiceLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
