"""One analysis run: stored posts -> token cache -> profiles -> audiences -> stored results.

Why this shape: ``nlp/`` stays pure (text and matrices in, numbers out) and
``storage/`` holds every SQL statement; the understand stage only moves data
between them, streaming so a million posts fit in memory. A run re-clusters
everyone or, when little changed, places the changed users into the stored
clustering (``bot.understand.full``).

Why this module imports so little: a fresh ``huaxiang analyze`` starts its
word-cutting workers first and loads the numeric half (``bot.understand.full``,
with SciPy and scikit-learn, about a second) on a thread while they cut.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from types import ModuleType
from typing import TYPE_CHECKING

import sqlite3

from config import Settings
from nlp.tokenize import TOKENIZER_VERSION
from storage import analysis_runs as run_store
from storage.db import transaction
from bot.errors import HuaxiangError
from bot.understand.caches import (AnalysisInterrupted, Progress, build_tokenizer, cutting_workers,
                                   update_token_cache)
from bot.understand.summaries import FirstCut

if TYPE_CHECKING:
    from bot.understand.results import AnalysisSummary

NUMERIC_PART = "bot.understand.full"


def _k_request(settings: Settings, k: int | str | None) -> int | str:
    """--k (or [analysis].k) as 'auto' or a whole number, with a clear error otherwise."""
    k = settings.analysis.k if k is None else k
    if isinstance(k, str) and k != "auto":
        try:
            k = int(k)
        except ValueError:
            raise HuaxiangError(f"--k must be 'auto' or a whole number, got {k!r}") from None
    if isinstance(k, int) and k < 1:
        raise HuaxiangError(f"--k must be 1 or more, got {k}")
    return k


def run_analysis(db: sqlite3.Connection, settings: Settings, k: int | str | None = None,
                 progress: Progress | None = None, full: bool | None = None,
                 stop: threading.Event | None = None) -> AnalysisSummary:
    """Analyse everything stored and update audiences, memberships and user stats.

    ``k``: None = settings.analysis.k; "auto" or a number >= 2.
    ``progress(stage, n, total)`` is called as work advances (stages: tokenise, profiles, cluster).
    ``full``: None decides by itself: when few posts changed since the last
    full clustering (under ``full.INCREMENTAL_MAX_CHANGE`` of them, same settings,
    same k request, fewer than ``full.INCREMENTAL_MAX_RUNS`` incremental runs in a
    row) only new and changed users are placed into the existing audiences;
    True always re-clusters everyone; False is the same as None.
    """
    t0 = time.perf_counter()
    asked_k = k is not None            # --k on the command line, not [analysis].k
    k = _k_request(settings, k)
    timings: dict[str, float] = {}
    with transaction(db):
        run_id = run_store.start_analysis_run(db, {"k": k, "tokenizer": TOKENIZER_VERSION})
    try:
        summary = _analyse(db, settings, run_id, k, asked_k, timings, progress, full, stop)
        summary.seconds = time.perf_counter() - t0
        summary.timings = timings
        with transaction(db):
            run_store.finish_analysis_run(db, run_id, "ok", k=summary.k, n_users=summary.n_users,
                                      n_posts=summary.n_posts,
                                      metrics={"k_scores": summary.k_scores, "timings": timings, "mode": summary.mode,
                                               "tokenized": summary.tokenized, "reused": summary.reused,
                                               "encoder": summary.encoder, "embedded": summary.embedded})
        return summary
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, AnalysisInterrupted) else "failed"
        with transaction(db):
            run_store.finish_analysis_run(db, run_id, status, metrics={"error": str(exc)[:500]})
        raise


class _Preload:
    """Imports one module on a thread (started once the workers have forked,
    so no worker inherits a half-held import lock); ``module()`` waits for it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None and self.name not in sys.modules:
            self.thread = threading.Thread(target=self._load, name=f"import {self.name}", daemon=True)
            self.thread.start()

    def _load(self) -> None:
        try:
            importlib.import_module(self.name)
        except Exception:       # noqa: BLE001 - module() imports again on the main thread and raises it there
            pass

    def ready(self) -> bool:
        """Loaded (or failed), so ``module()`` would not wait."""
        return self.thread is None or not self.thread.is_alive()

    def module(self) -> ModuleType:
        if self.thread is not None:
            self.thread.join()
        return importlib.import_module(self.name)


def _analyse(db: sqlite3.Connection, settings: Settings, run_id: int, k: int | str, asked_k: bool,
             timings: dict[str, float], progress: Progress | None, full: bool | None,
             stop: threading.Event | None) -> AnalysisSummary:
    """Bring the token cache up to date (the numeric half loading meanwhile), then a full or an incremental run.
    The cutting workers sum the users up for a full run's profiles: on the way when no post had words yet
    (``FirstCut``), else after the cutting."""
    t0 = time.perf_counter()
    tokenizer = build_tokenizer(settings, db)
    numeric = _Preload(NUMERIC_PART)
    first = FirstCut(db, settings, tokenizer, numeric.ready, progress)
    with cutting_workers(db, tokenizer) as workers:
        cut = update_token_cache(db, tokenizer, progress, started=numeric.start, runner=workers, first_cut=first)
        timings["tokens"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stages = numeric.module()
        timings["imports"] = time.perf_counter() - t0     # what the import thread had left when cutting ended
        return stages.analyse_tokenised(db, settings, run_id, k, asked_k, tokenizer, cut, timings, progress,
                                        full, stop, workers, first.profiles, first.settle)
