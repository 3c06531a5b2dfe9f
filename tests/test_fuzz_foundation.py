"""Bad input never crashes the config loader or the JSON-lines import: it gets
a clear error or is skipped, and a strict import that fails writes nothing."""

from __future__ import annotations

import json
import tomllib

from hypothesis import HealthCheck, given, settings, strategies as st

from config import ConfigError, parse_settings
from config.loader import load_file
from bot.errors import HuaxiangError
from bot.find.importer import import_file
from storage.db import connect

KEYS = ["database", "path", "sources", "queries", "name", "platform", "kind", "value", "schedule", "source",
        "engagement", "daily_cap", "quiet_hours", "templates", "variants", "analysis", "k", "seeds", "audiences",
        "max_pages", "base_url", "cookie_env", "cookie_file", "logging", "level", "weird", "健身"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["*/5 * * * *", "every 3m", "23:00-08:00", "weibo", "topic", "auto"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                      st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_config_loader_gives_settings_or_a_config_error(raw):
    raw = {k: v for k, v in raw.items() if v is not None}
    try:
        parse_settings(raw, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")


@FUZZ
@given(st.binary(max_size=300))
def test_config_file_bytes_never_crash(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "huaxiang.toml"
    path.write_bytes(data)
    try:
        load_file(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


line_values = st.one_of(
    st.binary(max_size=80).map(lambda b: b.replace(b"\n", b" ")),
    st.dictionaries(st.sampled_from(["id", "user_id", "text", "created_at", "topics", "platform", "user_name", "x"]),
                    st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=7)
    .map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(line_values, min_size=1, max_size=12))
def test_jsonl_import_skips_or_imports_every_line(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("imp")
    path = folder / "fuzz.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    db = connect(folder / "fuzz.db")
    try:
        summary = import_file(db, path)
        stripped = [l.strip() for l in b"\n".join(lines).split(b"\n")]
        if stripped and stripped[0].startswith(b"\xef\xbb\xbf"):
            stripped[0] = stripped[0][3:]  # a UTF-8 BOM on the first line is not content
        non_empty = sum(1 for l in stripped if l)
        assert summary.imported + summary.updated + summary.duplicates + summary.skipped == non_empty
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        before = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        if summary.skipped:
            try:
                import_file(db, path, strict=True)
                raise AssertionError("strict import accepted a file with bad lines")
            except HuaxiangError:
                pass
            assert db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == before
    finally:
        db.close()


def test_example_of_a_valid_toml_round_trip(tmp_path):
    text = '[[sources]]\nname = "s"\nplatform = "sandbox"\n'
    assert parse_settings(tomllib.loads(text)).sources[0].name == "s"
