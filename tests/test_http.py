"""The polite client: pacing, retries, Retry-After, timeouts, counters (no real waiting)."""

from __future__ import annotations

import random
import threading

import httpx
import pytest
import respx

from bot.find.errors import HttpError
from bot.find.http import PoliteClient, parse_retry_after
from config.schema import SourceSettings


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def make(transport=None, **kw) -> tuple[PoliteClient, FakeTime]:
    t = FakeTime()
    settings = SourceSettings(name="s", platform="weibo", base_url="https://m.weibo.cn", **kw)
    return PoliteClient(settings, transport=transport, clock=t.clock, sleep=t.sleep, rng=random.Random(1)), t


def test_requests_to_one_host_wait_their_turn_with_jitter():
    client, t = make(httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": 1})), min_interval_s=5, jitter_s=1)
    starts = []
    for _ in range(5):
        client.get("https://m.weibo.cn/api/x")
        starts.append(t.now)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(5 <= g <= 6 for g in gaps), gaps
    assert len(set(round(g, 3) for g in gaps)) > 1          # jitter: not a metronome
    assert client.stats.requests == 5


def test_hosts_are_paced_independently():
    client, t = make(httpx.MockTransport(lambda r: httpx.Response(200)), min_interval_s=5, jitter_s=0)
    client.get("https://a.example/x")
    client.get("https://b.example/x")
    assert t.sleeps == []                                      # a different host does not wait for the first
    client.get("https://a.example/y")
    assert t.sleeps == [5]


def test_no_limits_means_no_sleeping():
    client, t = make(httpx.MockTransport(lambda r: httpx.Response(200)), min_interval_s=0, jitter_s=0)
    for _ in range(20):
        client.get("https://m.weibo.cn/x")
    assert t.sleeps == []


@respx.mock
def test_5xx_is_retried_with_exponential_backoff_then_succeeds():
    route = respx.get("https://m.weibo.cn/api").mock(side_effect=[httpx.Response(503), httpx.Response(500), httpx.Response(200, json={"ok": 1})])
    client, t = make(min_interval_s=0, jitter_s=0, backoff_s=2, max_retries=3)
    resp = client.get("https://m.weibo.cn/api")
    assert resp.status_code == 200 and route.call_count == 3
    assert 2 <= t.sleeps[0] <= 2.5 and 4 <= t.sleeps[1] <= 5     # doubles, plus up to 25% jitter
    assert client.stats.errors == 2 and client.stats.faults == {"http_503": 1, "http_500": 1}


@respx.mock
def test_retry_after_is_honoured_on_429():
    respx.get("https://m.weibo.cn/api").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)])
    client, t = make(min_interval_s=0, jitter_s=0)
    assert client.get("https://m.weibo.cn/api").status_code == 200
    assert t.sleeps == [7.0]


@respx.mock
def test_retry_after_longer_than_we_wait_is_handed_up_at_once():
    route = respx.get("https://m.weibo.cn/api").mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    client, t = make(min_interval_s=0, jitter_s=0, max_backoff_s=300)
    assert client.get("https://m.weibo.cn/api").status_code == 429
    assert route.call_count == 1 and t.sleeps == []


@respx.mock
def test_retries_are_bounded_and_the_last_response_returned():
    route = respx.get("https://m.weibo.cn/api").mock(return_value=httpx.Response(503))
    client, t = make(min_interval_s=0, jitter_s=0, max_retries=2, backoff_s=1)
    assert client.get("https://m.weibo.cn/api").status_code == 503
    assert route.call_count == 3 and len(t.sleeps) == 2


@respx.mock
def test_blocking_statuses_are_not_retried():
    for status in (418, 432, 403, 302):
        route = respx.get(f"https://m.weibo.cn/{status}").mock(return_value=httpx.Response(status, headers={"Location": "https://passport.weibo.cn/signin"}))
        client, _ = make(min_interval_s=0, jitter_s=0)
        assert client.get(f"https://m.weibo.cn/{status}").status_code == status
        assert route.call_count == 1


@respx.mock
def test_timeouts_are_retried_then_raise():
    route = respx.get("https://m.weibo.cn/slow").mock(side_effect=httpx.ReadTimeout("slow"))
    client, t = make(min_interval_s=0, jitter_s=0, max_retries=2, backoff_s=1)
    with pytest.raises(HttpError) as info:
        client.get("https://m.weibo.cn/slow")
    assert info.value.kind == "timeout" and route.call_count == 3
    assert client.stats.faults["timeout"] == 3


@respx.mock
def test_post_is_never_retried_after_it_may_have_arrived():
    route = respx.post("https://api.weibo.com/2/comments/create.json").mock(side_effect=httpx.ReadTimeout("slow"))
    client, _ = make(min_interval_s=0, jitter_s=0, max_retries=3)
    with pytest.raises(HttpError):
        client.post("https://api.weibo.com/2/comments/create.json", data={"id": "1", "comment": "hi"})
    assert route.call_count == 1
    respx.post("https://api.weibo.com/2/statuses/repost.json").mock(return_value=httpx.Response(503))
    assert client.post("https://api.weibo.com/2/statuses/repost.json", data={"id": "1"}).status_code == 503


@respx.mock
def test_post_is_retried_when_the_connection_never_opened():
    route = respx.post("https://api.weibo.com/x").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={})])
    client, _ = make(min_interval_s=0, jitter_s=0)
    assert client.post("https://api.weibo.com/x", data={}).status_code == 200 and route.call_count == 2


def test_user_agent_cookie_and_byte_counts():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["ua"] = request.headers["User-Agent"]
        seen["cookie"] = request.headers.get("Cookie")
        return httpx.Response(200, content=b"x" * 123, headers={"Set-Cookie": "XSRF-TOKEN=abc; Path=/"})

    settings = SourceSettings(name="s", platform="weibo", base_url="https://m.weibo.cn", user_agent="TestUA/1",
                              min_interval_s=0, jitter_s=0)
    client = PoliteClient(settings, transport=httpx.MockTransport(handler), cookie="SUB=secret1; SUBP=secret2")
    client.get("https://m.weibo.cn/api")
    assert seen["ua"] == "TestUA/1"
    assert "SUB=secret1" in seen["cookie"] and "SUBP=secret2" in seen["cookie"]
    client.get("https://m.weibo.cn/api")
    assert "XSRF-TOKEN=abc" in seen["cookie"]                  # the jar keeps what the server set
    assert client.stats.as_dict()["bytes"] == 246


def test_concurrent_use_across_threads_keeps_per_host_spacing():
    import time

    times: dict[str, list[float]] = {"a": [], "b": []}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            times[request.url.host[0]].append(time.monotonic())
        return httpx.Response(200)

    settings = SourceSettings(name="s", platform="weibo", min_interval_s=0.05, jitter_s=0)
    client = PoliteClient(settings, transport=httpx.MockTransport(handler))
    threads = [threading.Thread(target=lambda h=h: [client.get(f"https://{h}.example/x") for _ in range(5)])
               for h in ("a", "a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    a = sorted(times["a"])
    assert len(a) == 10 and len(times["b"]) == 5
    # Slots are booked one after another under the host's lock, so ten requests
    # to one host span at least nine intervals (0.45 s) however the threads are
    # scheduled; two threads sharing no lock would finish in about half that.
    # Single gaps are not checked: a busy machine may delay one request's start.
    assert a[-1] - a[0] >= 0.40
    assert client.stats.requests == 15


def test_parse_retry_after_forms():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
