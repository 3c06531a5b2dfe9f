"""A source nobody answers: fail fast, name the URL, exit 1 (issue 14)."""

from __future__ import annotations

import socket

import httpx
import pytest

from bot.find.http import PoliteClient
from bot.find.errors import UnreachableError
from config.schema import SourceSettings


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def crawl_config(tmp_path, base_url: str, platform: str = "sandbox") -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[[sources]]
name = "sb"
platform = "{platform}"
base_url = "{base_url}"

[[queries]]
name = "q1"
source = "sb"
kind = "topic"
value = "健身打卡"

[[queries]]
name = "q2"
source = "sb"
kind = "keyword"
value = "跑步"
""", encoding="utf-8")
    return str(cfg)


def test_refused_connection_is_not_a_politeness_backoff():
    settings = SourceSettings(name="x", platform="weibo", base_url="http://127.0.0.1:1", max_retries=5,
                              backoff_s=30.0, max_backoff_s=120.0)
    slept: list[float] = []
    client = PoliteClient(settings, sleep=slept.append)
    with pytest.raises(UnreachableError) as exc:
        client.get(f"http://127.0.0.1:{closed_port()}/api/container/getIndex", params={"containerid": "1"})
    assert sum(slept) <= 3.0 and len(slept) <= 2            # short and bounded, whatever backoff_s says
    assert "http://127.0.0.1:" in str(exc.value) and "containerid" not in str(exc.value)


def test_crawl_against_a_closed_port_ends_fast_with_exit_1(cli, tmp_path):
    port = closed_port()
    cfg = crawl_config(tmp_path, f"http://127.0.0.1:{port}")
    code, out, err = cli("--config", cfg, "--db", tmp_path / "u.db", "crawl")
    text = out + err
    assert code == 1, text
    assert "after 3 attempts" in text          # the wait is bounded: test_refused_connection_is_not_a_politeness_backoff;
    #                                            wall-clock time is measured by bench/bench_unreachable.py
    assert f"http://127.0.0.1:{port}" in text
    assert f"huaxiang sandbox serve --port {port}" in text          # how to start what should be there


def test_unreachable_weibo_source_names_the_url_without_a_sandbox_hint(cli, tmp_path):
    port = closed_port()
    cfg = crawl_config(tmp_path, f"http://127.0.0.1:{port}", platform="weibo")
    code, out, err = cli("--config", cfg, "--db", tmp_path / "w.db", "crawl")
    assert code == 1 and f"127.0.0.1:{port}" in out + err and "sandbox serve" not in out + err
