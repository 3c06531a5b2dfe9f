"""When and how much people post, and how much they are heard.

Why per-hour histograms: engagement lands best when the audience is online;
the planner schedules replies into an audience's busy hours (outside quiet
hours). Hours are local to the campaign's time zone.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone, tzinfo

# Times arrive parsed: reading the stored text is config.times' job, done by
# the stage that feeds nlp/ (nlp/ imports nothing but itself).


def local_hour(when: datetime | None, tz: tzinfo) -> int | None:
    """The hour of a post in ``tz`` (a naive time is taken as already local)."""
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=tz)).astimezone(tz).hour


def peak_hours(hist: list[int], n: int = 3) -> list[int]:
    """The n busiest hours, busiest first (hours with no posts never count)."""
    order = sorted(range(24), key=lambda h: (-hist[h], h))
    return [h for h in order[:n] if hist[h] > 0]


def recency(last: datetime | None, now: datetime | None = None, half_life_days: float = 30.0) -> float:
    """1.0 for a post just now, halving every ``half_life_days``; 0 when unknown (``last`` is aware)."""
    if last is None:
        return 0.0
    now = now or datetime.now(timezone.utc)
    days = max(0.0, (now - last).total_seconds() / 86400)
    return 0.5 ** (days / half_life_days)


def raw_influence(followers: int | None, engagement_per_post: float, verified: bool | None) -> float:
    """Unscaled influence: log followers + log engagement, a small bonus for verified accounts."""
    return math.log1p(max(followers or 0, 0)) + 1.5 * math.log1p(max(engagement_per_post, 0.0)) + (1.0 if verified else 0.0)
