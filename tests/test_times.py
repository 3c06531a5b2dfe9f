"""config.times: the stored format, reading stored times, reading platform times."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.times import CHINA, UTC, parse_platform_time, parse_stored, platform_time, to_stored, utcnow

STORED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")


def test_utcnow_is_the_stored_format_and_now():
    before = datetime.now(UTC).replace(microsecond=0)
    text = utcnow()
    after = datetime.now(UTC)
    assert STORED.match(text)
    assert before <= datetime.fromisoformat(text) <= after      # bracketed by the clock, no time limit


def test_to_stored_is_utc_whole_seconds_and_sorts_as_text():
    assert to_stored(datetime(2026, 11, 22, 9, 41, 3, 999_999, tzinfo=CHINA)) == "2026-11-22T01:41:03+00:00"
    early, late = datetime(2026, 11, 22, 23, 0, tzinfo=CHINA), datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert (to_stored(early) < to_stored(late)) == (early < late)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-22T01:41:03+00:00", datetime(2026, 11, 22, 1, 41, 3, tzinfo=UTC)),
    ("2026-11-22T09:41:03+08:00", datetime(2026, 11, 22, 1, 41, 3, tzinfo=UTC)),
    ("2026-11-22T01:41:03Z", datetime(2026, 11, 22, 1, 41, 3, tzinfo=UTC)),
    ("2026-11-22T01:41:03.000Z", datetime(2026, 11, 22, 1, 41, 3, tzinfo=UTC)),
    ("2026-11-22T01:41:03", datetime(2026, 11, 22, 1, 41, 3, tzinfo=UTC)),       # naive: UTC
    (" 2026-11-22 ", datetime(2026, 11, 22, tzinfo=UTC)),
])
def test_parse_stored_reads_stored_and_iso_times(text, expected):
    got = parse_stored(text)
    assert got == expected and got.tzinfo is not None


@pytest.mark.parametrize("value", [None, "", "soon", "2026-13-45", 12345, b"2026-11-22"])
def test_parse_stored_gives_none_for_what_is_not_a_time(value):
    assert parse_stored(value) is None


def test_parse_stored_reads_naive_values_in_the_zone_asked_and_keeps_datetimes():
    shanghai = ZoneInfo("Asia/Shanghai")
    assert parse_stored("2026-11-22T09:00:00", naive=shanghai).astimezone(UTC).hour == 1
    aware = datetime(2026, 1, 1, tzinfo=CHINA)
    assert parse_stored(aware) is aware
    assert parse_stored(datetime(2026, 1, 1)).tzinfo is UTC


@pytest.mark.parametrize("value, expected", [
    ("Sun Nov 22 09:41:03 +0800 2026", "2026-11-22T09:41:03+08:00"),      # Weibo's API and the tools crawling it
    ("Sun Nov 22 01:41:03 +0000 2026", "2026-11-22T01:41:03+00:00"),      # its own offset is kept
    ("2026-11-22 09:41:03", "2026-11-22T09:41:03+08:00"),                 # naive: China time
    ("2026-11-22T01:41:03Z", "2026-11-22T01:41:03+00:00"),
    ("2026-11-22", "2026-11-22T00:00:00+08:00"),
    (1795311663, "2026-11-22T09:41:03+08:00"),                            # epoch seconds
    (1795311663000, "2026-11-22T09:41:03+08:00"),                         # epoch milliseconds
    ("1795311663", "2026-11-22T09:41:03+08:00"),
    (None, None),
    ("  ", None),
])
def test_platform_time_reads_the_shapes_platforms_and_tools_write(value, expected):
    assert platform_time(value) == expected


def test_platform_time_reads_naive_values_in_the_zone_asked():
    assert platform_time("2026-11-22T01:41:03", naive=UTC) == "2026-11-22T01:41:03+00:00"


@pytest.mark.parametrize("value, message", [
    ("2026-13-45", "bad date"),
    ("5分钟前", "bad date"),                      # Weibo's relative forms are the Weibo adapter's
    ("Sun Nov 32 09:41:03 +0800 2026", "bad date"),
    (True, "bad date"),
    ([2026], "bad date"),
    (float("inf"), "bad timestamp"),
    (float("nan"), "bad timestamp"),
    (-5, "bad timestamp"),
    (10 ** 400, "bad timestamp"),
    ("1800-01-01", "out of range"),
    ("9999-12-31T23:59:59-14:00", "out of range"),
])
def test_platform_time_refuses_what_it_cannot_read_naming_the_value(value, message):
    with pytest.raises(ValueError, match=message):
        parse_platform_time(value)


@given(st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2198, 12, 31),
                    timezones=st.sampled_from([UTC, CHINA, timezone(timedelta(hours=-5, minutes=-30))])))
def test_what_platform_time_writes_parse_stored_reads_back_as_the_same_instant(when):
    text = platform_time(when.isoformat())
    assert parse_stored(text) == when
    assert parse_stored(to_stored(when)) == when.replace(microsecond=0)
