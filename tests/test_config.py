"""Config errors name the file, the key path and what is wrong - never a traceback."""

from __future__ import annotations

import pytest

from config import ConfigError, load_file, load_settings, resolve_secret

GOOD = """
[database]
path = "x.db"

[[sources]]
name = "weibo"
platform = "weibo"
base_url = "https://m.weibo.cn"
cookie_env = "HX_TEST_COOKIE"

[[queries]]
name = "fitness-topic"
source = "weibo"
kind = "topic"
value = "健身打卡"
schedule = "*/30 * * * *"
max_pages = 5

[[audiences]]
name = "健身人群"
seeds = ["健身", "增肌", "撸铁"]

[engagement]
max_touches_per_user = 1
window_days = 7
daily_cap = 30
quiet_hours = "23:00-08:00"
"""


def write(tmp_path, text: str):
    p = tmp_path / "huaxiang.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_the_documented_shape_loads(tmp_path):
    s = load_file(write(tmp_path, GOOD))
    assert s.database.path == "x.db"
    assert s.queries[0].value == "健身打卡"
    assert s.audiences[0].seeds == ["健身", "增肌", "撸铁"]
    assert s.engagement.daily_cap == 30


def test_lookup_order_explicit_then_cwd_then_defaults(tmp_path):
    assert load_settings(None, cwd=tmp_path).origin == "<defaults>"
    write(tmp_path, GOOD)
    assert load_settings(None, cwd=tmp_path).origin.endswith("huaxiang.toml")
    other = tmp_path / "other.toml"
    other.write_text('[database]\npath = "y.db"\n', encoding="utf-8")
    assert load_settings(other, cwd=tmp_path).database.path == "y.db"


@pytest.mark.parametrize(
    "change, key, words",
    [
        (("[engagement]", "[engagement]\ndailycap = 3"), "engagement.dailycap", "unknown key"),
        (("daily_cap = 30", 'daily_cap = "thirty"'), "engagement.daily_cap", "expected integer"),
        (('schedule = "*/30 * * * *"', 'schedule = "every now and then"'), "queries[0].schedule", "bad cron expression"),
        (('kind = "topic"', 'kind = "hashtag"'), "queries[0].kind", "must be one of"),
        (('quiet_hours = "23:00-08:00"', 'quiet_hours = "late"'), "engagement.quiet_hours", "bad quiet hours"),
        (('source = "weibo"', 'source = "douyin"'), "queries[0].source", "no [[sources]] entry"),
        (('value = "健身打卡"\n', ""), "queries[0].value", "missing required key"),
        (('seeds = ["健身", "增肌", "撸铁"]', 'seeds = "健身"'), "audiences[0].seeds", "expected a list"),
    ],
)
def test_each_kind_of_mistake_names_file_key_and_problem(tmp_path, change, key, words):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_file(path)
    message = str(info.value)
    assert str(path) in message
    assert f": {key}: " in message
    assert words in message


def test_broken_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[database\npath = 1")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_file(path)
    assert str(path) in str(info.value)


def test_missing_secret_names_the_key_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("HX_TEST_COOKIE", raising=False)
    s = load_file(write(tmp_path, GOOD))
    with pytest.raises(ConfigError) as info:
        resolve_secret(s, s.sources[0], "cookie")
    assert "sources[0].cookie_env" in str(info.value)
    assert "HX_TEST_COOKIE" in str(info.value)
    monkeypatch.setenv("HX_TEST_COOKIE", "SUB=abc123")
    assert resolve_secret(s, s.sources[0], "cookie") == "SUB=abc123"


def test_secret_file_must_exist(tmp_path):
    text = GOOD.replace('cookie_env = "HX_TEST_COOKIE"', f'cookie_file = "{tmp_path / "nope.txt"}"')
    with pytest.raises(ConfigError, match=r"sources\[0\]\.cookie_file: secret file"):
        load_file(write(tmp_path, text))
    (tmp_path / "nope.txt").write_text("SUB=xyz\n", encoding="utf-8")
    s = load_file(write(tmp_path, text))
    assert resolve_secret(s, s.sources[0], "cookie") == "SUB=xyz"


def test_cli_reports_config_errors_in_one_line(cli, tmp_path):
    (tmp_path / "huaxiang.toml").write_text("[database]\nnope = 1\n", encoding="utf-8")
    code, out, err = cli("import", "whatever.jsonl")
    assert code == 1
    assert err.strip().count("\n") == 0
    assert "huaxiang.toml: database.nope: unknown key" in err
    assert "Traceback" not in err


def test_environment_overrides_a_key_of_the_file_and_of_the_defaults(tmp_path):
    env = {"HUAXIANG__ANALYSIS__ENCODER": "semantic", "HUAXIANG__ENGAGEMENT__DAILY_CAP": "12", "PATH": "/bin"}
    s = load_settings(write(tmp_path, GOOD), environ=env)
    assert (s.analysis.encoder, s.engagement.daily_cap, s.database.path) == ("semantic", 12, "x.db")
    assert load_settings(None, cwd=tmp_path / "nowhere", environ=env).analysis.semantic_max_posts == 20_000
    assert load_settings(None, cwd=tmp_path / "nowhere", environ={}).analysis.encoder == "auto"


@pytest.mark.parametrize(
    "name, value, key, words",
    [
        ("HUAXIANG__ANALYSIS__ENCODER", "bert", "analysis.encoder", "must be one of auto, words, semantic"),
        ("HUAXIANG__ENGAGEMENT__DAILY_CAP", "many", "engagement.daily_cap", "expected integer"),
        ("HUAXIANG__ANALYSIS__ENCODR", "words", "analysis.encodr", "unknown key"),
        ("HUAXIANG__NOSUCH__KEY", "1", "nosuch", "unknown key"),
        ("HUAXIANG__QUERIES__VALUE", "x", "queries", "only [section] keys"),
        ("HUAXIANG__ANALYSIS", "x", "", "HUAXIANG__SECTION__KEY"),
    ],
)
def test_a_bad_environment_override_names_the_variable_key_and_problem(tmp_path, name, value, key, words):
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, GOOD), environ={name: value})
    assert e.value.file == f"environment variable {name}"
    assert e.value.key == key and words in e.value.problem


def test_an_override_of_a_text_key_stays_text_and_a_list_item_mistake_names_the_variable(tmp_path):
    env = {"HUAXIANG__DATABASE__PATH": "2024", "HUAXIANG__ENGAGEMENT__TIMEZONE": "Asia/Shanghai"}
    s = load_settings(write(tmp_path, GOOD), environ=env)
    assert s.database.path == "2024"
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, GOOD), environ={"HUAXIANG__ANALYSIS__USER_DICT": "[1]"})
    assert e.value.file == "environment variable HUAXIANG__ANALYSIS__USER_DICT"
    assert e.value.key == "analysis.user_dict[0]"
