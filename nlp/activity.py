"""When and how much people post, and how much they are heard.

Why per-hour histograms: engagement lands best when the audience is online;
the planner schedules replies into an audience's busy hours (outside quiet
hours). Hours are local to the campaign's time zone.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from config.times import UTC, parse_stored


def local_hour(created_at: str | None, tz: ZoneInfo) -> int | None:
    """The hour of a post in ``tz`` (a naive time is taken as already local)."""
    dt = parse_stored(created_at, naive=tz)
    return None if dt is None else dt.astimezone(tz).hour


def peak_hours(hist: list[int], n: int = 3) -> list[int]:
    """The n busiest hours, busiest first (hours with no posts never count)."""
    order = sorted(range(24), key=lambda h: (-hist[h], h))
    return [h for h in order[:n] if hist[h] > 0]


def recency(last: str | None, now: datetime | None = None, half_life_days: float = 30.0) -> float:
    """1.0 for a post just now, halving every ``half_life_days``; 0 when unknown."""
    dt = parse_stored(last)
    if dt is None:
        return 0.0
    now = now or datetime.now(UTC)
    days = max(0.0, (now - dt).total_seconds() / 86400)
    return 0.5 ** (days / half_life_days)


def raw_influence(followers: int | None, engagement_per_post: float, verified: bool | None) -> float:
    """Unscaled influence: log followers + log engagement, a small bonus for verified accounts."""
    return math.log1p(max(followers or 0, 0)) + 1.5 * math.log1p(max(engagement_per_post, 0.0)) + (1.0 if verified else 0.0)
