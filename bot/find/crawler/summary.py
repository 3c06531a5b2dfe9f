"""What a crawl did: one ``QueryRun`` per query (its row in ``crawl_runs``) and the summary of a whole crawl."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from storage.records import UpsertCounts


@dataclass
class QueryRun:
    """What one query's run did; also the row in ``crawl_runs``."""

    query: str
    source: str
    status: str = "ok"        # ok | partial | blocked | paused | interrupted | failed | skipped
    run_id: int | None = None
    requests: int = 0
    bytes: int = 0
    pages: int = 0
    new_posts: int = 0
    updated_posts: int = 0
    new_users: int = 0
    updated_users: int = 0
    authors: int = 0
    errors: int = 0
    skipped: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("requests", "bytes", "pages", "new_posts", "updated_posts", "new_users",
                                              "updated_users", "authors", "errors", "skipped")}

    def add(self, pc: UpsertCounts, uc: UpsertCounts) -> None:
        """Count what one transaction stored."""
        self.new_posts += pc.new
        self.updated_posts += pc.updated
        self.new_users += uc.new
        self.updated_users += uc.updated

    def take_stats(self, stats: Any, before: Any) -> None:
        """Requests, bytes, errors and faults of the client since ``before``."""
        delta = stats.since(before)
        self.requests, self.bytes, self.errors = delta.requests, delta.bytes, delta.errors
        self.faults = dict(sorted(delta.faults.items()))


@dataclass
class CrawlSummary:
    runs: list[QueryRun] = field(default_factory=list)
    paused_sources: list[dict[str, Any]] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)     # one line per source nothing answered for

    def as_counts(self) -> dict[str, int]:
        out: dict[str, int] = Counter()
        out["queries"] = len(self.runs)
        for r in self.runs:
            for k, v in r.counts().items():
                out[k] += v
            out[f"status_{r.status}"] += 1
        out["paused_sources"] = len(self.paused_sources)
        return dict(out)
