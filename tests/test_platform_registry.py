"""Platform knowledge lives on the adapters: the registry finds them, the
config is checked against them, and no other module names a platform."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import ConfigError, parse_settings
from bot.find.sources import (default_platform, local_platforms, platform_rules, post_link, profile_link, registered,
                              send_platforms, signin_platforms, source_class)
from bot.errors import HuaxiangError

ROOT = Path(__file__).resolve().parent.parent
SOURCE = {"name": "s", "platform": "weibo"}


def test_the_registry_lists_every_adapter_module_and_what_each_declares():
    adapters = registered()
    assert list(adapters) == ["mastodon", "rss", "sandbox", "weibo"]
    assert {name: cls.send_mode for name, cls in adapters.items()} == {
        "mastodon": "mastodon", "rss": None, "sandbox": "sandbox", "weibo": "weibo-api"}
    assert send_platforms("weibo-api") == ("weibo",) and send_platforms("manual") == ()
    assert signin_platforms() == {"weibo": ("sandbox", "weibo")}      # the sandbox signs in the way Weibo does
    assert default_platform() == "weibo" and local_platforms() == ("sandbox",)
    assert platform_rules().keys["mastodon"] == frozenset({"visibility"})
    assert platform_rules().keys["rss"] == frozenset()


def test_an_unknown_platform_names_the_registered_ones():
    with pytest.raises(HuaxiangError, match=r"no adapter for platform 'nope' \(registered: mastodon, rss, sandbox, weibo"):
        source_class("nope")


def test_links_come_from_the_adapter_when_the_stored_row_has_none():
    sources = parse_settings({"sources": [{"name": "sb", "platform": "sandbox", "base_url": "http://127.0.0.1:8765/"}]}).sources
    assert post_link("weibo", "51", None, sources) == "https://m.weibo.cn/detail/51"
    assert post_link("sandbox", "51", None, sources) == "http://127.0.0.1:8765/detail/51"
    assert post_link("sandbox", "51", None, []) == ""              # no sandbox configured: no guessed port
    assert post_link("mastodon", "51", "https://m.example/@a/51", []) == "https://m.example/@a/51"
    assert post_link("rss", "51", None, []) == ""
    assert profile_link("weibo", "7", None) == "https://weibo.com/u/7"
    assert profile_link("sandbox", "7", None) == "" and profile_link(None, "7", None) == ""


@pytest.mark.parametrize("raw, key, words", [
    ({"sources": [{**SOURCE, "platform": "twitter"}]}, "sources[0].platform",
     "must be one of 'mastodon' | 'rss' | 'sandbox' | 'weibo', got 'twitter'"),
    ({"sources": [{**SOURCE, "visibility": "public"}]}, "sources[0].visibility",
     "platform 'weibo' does not read it (only: mastodon)"),
    ({"sources": [{**SOURCE, "platform": "rss", "profile_details": False}]}, "sources[0].profile_details",
     "platform 'rss' does not read it (only: sandbox, weibo)"),
    ({"engagement": {"send_mode": "weibo"}}, "engagement.send_mode",
     "must be one of 'dry-run' | 'mastodon' | 'sandbox' | 'weibo-api' | 'manual', got 'weibo'"),
])
def test_the_config_is_checked_against_the_registered_adapters(raw, key, words):
    with pytest.raises(ConfigError) as exc:
        parse_settings(raw, "c.toml", platform_rules())
    assert str(exc.value) == f"c.toml: {key}: {words}"


def test_keys_of_its_own_platform_and_defaults_pass():
    s = parse_settings({"sources": [{**SOURCE, "platform": "sandbox", "api_base_url": "http://127.0.0.1:1"},
                                    {"name": "m", "platform": "mastodon", "visibility": "public"}],
                        "engagement": {"send_mode": "mastodon"}}, "c.toml", platform_rules())
    assert [src.platform for src in s.sources] == ["sandbox", "mastodon"]


def test_the_cli_says_which_platforms_exist_in_one_line(cli, tmp_path):
    (tmp_path / "huaxiang.toml").write_text('[[sources]]\nname = "x"\nplatform = "douyin"\n', encoding="utf-8")
    code, _out, err = cli("status")
    assert code == 1 and err.strip().count("\n") == 0 and "Traceback" not in err
    assert "huaxiang.toml: sources[0].platform: must be one of 'mastodon' | 'rss' | 'sandbox' | 'weibo', got 'douyin'" in err


def test_platform_names_appear_in_code_only_in_the_adapters():
    """The acceptance of issue 18: a new platform is one file in bot/find/sources/.
    Importers of another tool's Weibo files and the sandbox's Weibo-shaped
    payloads use "weibo" as a file format's table or key name, not as a platform."""
    literal = re.compile(r"""["'](weibo|sandbox|rss|mastodon|weibo-api)["']""")
    format_names = {"bot/find/imports/__init__.py", "bot/find/imports/weibo_crawler.py",
                    "bot/find/imports/mediacrawler.py", "bot/find/sandbox/server.py"}
    found = []
    for folder in ("bot", "config", "storage", "nlp"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("bot/find/sources/") or rel in format_names:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if literal.search(code) and "add_parser(" not in code and not code.lstrip().startswith("``"):
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
