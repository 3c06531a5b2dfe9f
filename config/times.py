"""Times: the one stored format, and reading the times every layer meets.

Why one module, here: the crawler, the importers, storage, analysis, the
planner, the scheduler and the report all read and write times, and config/
is the one layer every other may import. Two different jobs, two names:

- times we keep (run records, schedules, locks, queue items) are written by
  :func:`utcnow` / :func:`to_stored` - ISO 8601, UTC, whole seconds,
  ``+00:00`` - so they sort as text; :func:`parse_stored` reads them (and
  a post's stored ``created_at``) back as aware datetimes;
- times a platform or another tool wrote come in many shapes (ISO with or
  without an offset, ``Tue Feb 23 12:28:47 +0800 2021``, epoch seconds or
  milliseconds); :func:`parse_platform_time` reads them strictly and
  :func:`platform_time` turns them into the ISO text stored on a post.
  Forms only one platform uses (Weibo's ``5分钟前``) stay in its adapter,
  built on these.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

UTC = timezone.utc
# Chinese platforms, and the tools that crawl them, write times without an
# offset in China time.
CHINA = timezone(timedelta(hours=8))

# Post times outside these years (in UTC) are typing mistakes or attacks:
# 9999-12-31T23:59:59-14:00 is past the year 9999 in UTC and breaks every
# later date computation, so it is refused where it enters.
FIRST_YEAR, LAST_YEAR = 1900, 2199

# "Tue Feb 23 12:28:47 +0800 2021" (Weibo's API, MediaCrawler's and weibo-crawler's
# files). Hand-parsed: strptime is slow and bound to the C locale's month names.
_FULL = re.compile(r"^[A-Z][a-z]{2} ([A-Z][a-z]{2}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2}) (\d{4})$")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_EPOCH = re.compile(r"^\d{9,13}(\.\d+)?$")


def utcnow() -> str:
    """The current time in the stored format."""
    return to_stored(datetime.now(UTC))


def to_stored(dt: datetime) -> str:
    """An aware datetime in the stored format: UTC, whole seconds, ``+00:00``."""
    return dt.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_stored(value: str | datetime | None, naive: tzinfo = UTC) -> datetime | None:
    """A stored ISO time (ours, or a post's ``created_at``) as an aware datetime.

    Naive values are read in ``naive`` (UTC: what we write has an offset, so
    a naive one is old or hand-made). Empty or unreadable gives None: a
    damaged value in one row must not stop a report or a schedule.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=naive)


def parse_platform_time(value: Any, naive: tzinfo = CHINA) -> datetime:
    """A time as a platform or another tool wrote it, as an aware datetime.

    Takes ISO 8601 (``Z`` or an offset; naive values are read in ``naive``),
    ``Tue Feb 23 12:28:47 +0800 2021`` and epoch seconds or milliseconds
    (a number or a string of digits). Anything else, or a time outside
    FIRST_YEAR..LAST_YEAR, is a ValueError naming the value, so the record
    is reported rather than stored with a made-up date.
    """
    if isinstance(value, str):
        text = value.strip()
        dt = _full_form(text)
        if dt is None and _EPOCH.match(text):
            return _in_range(_from_epoch(text, naive))
        if dt is None:
            try:
                dt = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"bad date {value!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=naive)
        return _in_range(dt)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _in_range(_from_epoch(value, naive))
    raise ValueError(f"bad date {value!r}")


def platform_time(value: Any, naive: tzinfo = CHINA) -> str | None:
    """A platform's or tool's time as the ISO text stored on a post, keeping
    its own offset (``+08:00`` stays China time); None when empty. Unreadable
    values raise ValueError (see :func:`parse_platform_time`)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_platform_time(value, naive).isoformat()


def _from_epoch(value: int | float | str, zone: tzinfo) -> datetime:
    """Seconds or milliseconds since 1970, shown in ``zone``."""
    try:
        ts = float(value)
    except OverflowError:
        raise ValueError(f"bad timestamp {value!r}") from None
    if ts > 1e11:            # milliseconds
        ts /= 1000
    if not 0 < ts < 1e11:    # NaN, infinities, before 1970 or after the year 5000
        raise ValueError(f"bad timestamp {value!r}")
    return datetime.fromtimestamp(ts, tz=zone)


def _full_form(text: str) -> datetime | None:
    m = _FULL.match(text)
    if not m or m.group(1) not in _MONTHS:
        return None
    tz = _offset(m.group(6), m.group(7), m.group(8))
    try:
        return datetime(int(m.group(9)), _MONTHS[m.group(1)], int(m.group(2)), int(m.group(3)), int(m.group(4)),
                        int(m.group(5)), tzinfo=tz)
    except ValueError:
        raise ValueError(f"bad date {text!r}") from None


@functools.lru_cache(maxsize=64)
def _offset(sign: str, hours: str, minutes: str) -> timezone:
    """``+0800`` as a tzinfo (one object per offset: a crawl reads thousands of times)."""
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(delta if sign == "+" else -delta)


def _in_range(dt: datetime) -> datetime:
    if FIRST_YEAR < dt.year < LAST_YEAR:        # the common case; an offset cannot cross a whole year
        return dt
    try:
        year = dt.astimezone(UTC).year
    except OverflowError:
        year = None
    if year is None or not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"date {dt.isoformat()} is out of range (years {FIRST_YEAR} to {LAST_YEAR})")
    return dt
