"""Numbers where they enter (issue 17.7): every config number and every
numeric CLI option is accepted and works, or is refused in one line naming
the key or option and its range; never a traceback, never a crash later."""

from __future__ import annotations

import dataclasses
import io
import re
import math
import typing
from contextlib import redirect_stderr, redirect_stdout

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from config import ConfigError, Settings, parse_settings
from config.loader import GENERIC_RANGE
from config.schema import NUMBER_RANGES
from storage.db import connect
from test_export import seed_fixture

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Minimal valid entries for the list sections, so one number can be placed in each.
SOURCE = {"name": "s", "platform": "sandbox", "base_url": "http://127.0.0.1:9"}
QUERY = {"name": "q", "source": "s", "kind": "topic", "value": "健身"}
AUDIENCE = {"name": "健身"}


def numeric_fields() -> list[tuple[str, str, type, str]]:
    """(section, key, owning dataclass, 'int'|'float') for every number in the schema."""
    out = []
    for top in dataclasses.fields(Settings):
        if top.metadata.get("internal"):
            continue
        tp = typing.get_type_hints(Settings)[top.name]
        cls = typing.get_args(tp)[0] if typing.get_origin(tp) is list else tp
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            if kind in (int, float) or (typing.get_origin(kind) in (typing.Union, __import__("types").UnionType)
                                        and int in typing.get_args(kind)):
                out.append((top.name, f.name, cls, "float" if kind is float else "int"))
    return out


FIELDS = numeric_fields()


def raw_with(section: str, key: str, value) -> dict:
    if section == "sources":
        return {"sources": [{**SOURCE, key: value}]}
    if section == "queries":
        return {"sources": [SOURCE], "queries": [{**QUERY, key: value}]}
    if section == "audiences":
        return {"audiences": [{**AUDIENCE, key: value}]}
    return {section: {key: value}}


def read_back(s: Settings, section: str, key: str):
    part = getattr(s, section)
    return getattr(part[0] if isinstance(part, list) else part, key)


NUMBERS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=-5, max_value=100_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10.0, max_value=100_000.0),
    st.sampled_from([0, 1, -1, 2**63, 10**400, math.inf, -math.inf, math.nan, 1e308]),
)


def test_every_numeric_config_key_has_a_range():
    missing = [f"{s}.{k}" for s, k, cls, _ in FIELDS if k not in NUMBER_RANGES.get(cls, {})]
    assert missing == [], f"add these to config.schema.NUMBER_RANGES: {missing}"


@pytest.mark.parametrize("section,key,cls,kind", FIELDS, ids=[f"{s}.{k}" for s, k, _, _ in FIELDS])
@FUZZ
@given(value=NUMBERS)
def test_config_numbers_are_in_range_or_refused_naming_key_and_range(section, key, cls, kind, value):
    lo, hi = NUMBER_RANGES.get(cls, {}).get(key, GENERIC_RANGE)
    try:
        s = parse_settings(raw_with(section, key, value), "t.toml")
    except ConfigError as exc:
        line = str(exc)
        assert "\n" not in line and f".{key}" in line or line.startswith(f"t.toml: {key}") or key in line, line
        in_range = (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and (isinstance(value, int) or math.isfinite(value)) and lo <= value <= hi)
        if not in_range or (kind == "int" and isinstance(value, float)):
            assert f"from {lo:g} to {hi:g}" in line or f"from {lo} to {hi}" in line, line
        return
    got = read_back(s, section, key)
    assert math.isfinite(got) and lo <= got <= hi


# -- accepted extremes work: plan, send and status with each engagement / schedule / database number at its bounds --

@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("numbers") / "huaxiang.db"
    db = connect(path)
    seed_fixture(db)
    db.close()
    return path


def _cli(*argv: str) -> tuple[int, str, str]:
    from bot.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


EXTREMES = [(s, k, b) for s, k, cls, _ in FIELDS if s in ("engagement", "schedule", "database", "analysis", "report")
            for b in NUMBER_RANGES[cls][k]]
COMMANDS = {"engagement": (["plan"], ["send", "--dry-run"], ["status"]), "schedule": (["status"], ["plan"]),
            "database": (["status"], ["plan"]), "analysis": (["analyze"],), "report": (["report", "-o", "{tmp}/r.html"],)}


@pytest.mark.parametrize("section,key,bound", EXTREMES, ids=[f"{s}.{k}={b}" for s, k, b in EXTREMES])
def test_config_extremes_work(seeded_db, tmp_path, section, key, bound):
    import shutil

    db = tmp_path / "h.db"
    shutil.copy(seeded_db, db)
    cfg = tmp_path / "c.toml"
    value = bound if isinstance(bound, float) else int(bound)
    if key == "min_relevance" or isinstance(bound, float):
        value = float(bound)
    cfg.write_text(f"[{section}]\n{key} = {value!r}\n", encoding="utf-8")
    if key in ("leaders_share", "engaged_share") and value == 1:      # the two shares may not add up to more than 1
        other = "engaged_share" if key == "leaders_share" else "leaders_share"
        cfg.write_text(f"[analysis]\n{key} = 1.0\n{other} = 0.0\n", encoding="utf-8")
    for cmd in COMMANDS[section]:
        cmd = [a.replace("{tmp}", str(tmp_path)) for a in cmd]       # never write into the checkout
        code, out, err = _cli("--config", str(cfg), "--db", str(db), *cmd)
        assert "Traceback" not in err, (cmd, err)
        if (section, key, value) == ("analysis", "min_posts", 1_000_000):
            assert code == 1 and "nothing to analyse" in err, err      # nobody has that many posts: said plainly
        else:
            assert code == 0, (cmd, err)


# -- the CLI's numeric options ---------------------------------------------------------------------------------------

OPTION_VALUES = st.one_of(
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.integers(min_value=-3, max_value=400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e309", "9" * 5000, "", "0x10", "1_000", " 7", "٣"]),
)

# (argv with {} for the value, option name as argparse names it, run it for real when accepted?)
OPTIONS = [
    (["search", "健身", "--limit", "{}"], "--limit", True),
    (["queue", "list", "--limit", "{}"], "--limit", True),
    (["queue", "show", "{}"], "id", True),
    (["queue", "reject", "{}", "--by", "王小明"], "ID", True),
    (["export", "audience", "1", "--limit", "{}", "-o", "x.csv"], "--limit", True),
    (["export", "audience", "1", "--min-relevance", "{}", "-o", "x.csv"], "--min-relevance", True),
    (["send", "--dry-run", "--max", "{}"], "--max", True),
    (["review", "--print-only", "--port", "{}"], "--port", True),
    (["sandbox", "world", "--users", "{}"], "--users", "small"),
    (["sandbox", "world", "--seed", "{}", "--users", "30"], "--seed", True),
    (["sandbox", "serve", "--port", "{}"], "--port", False),
    (["sandbox", "serve", "--faults", "{}"], "--faults", False),
    (["sandbox", "serve", "--slow-s", "{}"], "--slow-s", False),
    (["analyze", "--k", "{}"], "--k", False),
    (["demo", "--seed", "{}"], "--seed", False),
]


@pytest.mark.parametrize("argv,option,run", OPTIONS, ids=[" ".join(a[:2]) + " " + o for a, o, _ in OPTIONS])
@FUZZ
@given(text=OPTION_VALUES)
def test_cli_numeric_options_work_or_are_refused_in_one_line(seeded_db, tmp_path, monkeypatch, argv, option, run, text):
    import shutil

    from bot.cli import build_parser

    monkeypatch.chdir(tmp_path)
    args = [a.replace("{}", text) if a == "{}" else a for a in argv]
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(args)
            accepted = True
        except SystemExit as exc:
            accepted = False
            assert exc.code == 2
    if not accepted:
        last = err.getvalue().strip().splitlines()[-1]
        assert "error:" in last and option in last and "Traceback" not in err.getvalue(), last
        if not text.strip().startswith("-"):      # argparse reads -inf or -1e+300 as an option: its own message
            assert re.search(rf"argument (\S+/)?{re.escape(option)}(/\S+)?: must be", last) and "from" in last, last
        assert "Traceback" not in err.getvalue()
        return
    if run is False or (run == "small" and int(text) > 300):
        return
    db = tmp_path / "huaxiang.db"
    if not db.exists():
        shutil.copy(seeded_db, db)
    code, out, err_text = _cli("--db", str(db), *args)
    assert code in (0, 1) and "Traceback" not in err_text, err_text
    if code == 1:
        lines = [l for l in err_text.splitlines() if l.strip()]
        assert len(lines) == 1, err_text          # e.g. "huaxiang: error: ..." or "item 2 is approved, expected pending"


def test_k_larger_than_the_users_is_refused_with_the_range(seeded_db, tmp_path):
    import shutil

    db = tmp_path / "h.db"
    shutil.copy(seeded_db, db)
    code, out, err = _cli("--db", str(db), "analyze", "--k", "1000")
    assert code == 1 and "--k 1000: there are only" in err and "choose 2 to" in err, err


@pytest.mark.parametrize("argv", [["review", "--port", "70000"], ["review", "--port", "-1"],
                                  ["sandbox", "serve", "--port", "70000"], ["sandbox", "world", "--users", "99999999999"],
                                  ["sandbox", "world", "--users", "-1"], ["analyze", "--k", "1000000"]])
def test_the_reported_values_are_refused(argv):
    code, out, err = _cli(*argv)
    assert code == 2 and "must be" in err and "from" in err, err


def _all_actions(parser, path=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_actions(sub, path + (name,))
        else:
            yield path, action


def test_every_numeric_cli_option_checks_its_range():
    """No option or argument takes a bare int or float: each goes through bot.argtypes (or its own
    checked parser), so none reaches the code unchecked."""
    from bot.cli import build_parser

    bare = [f"{' '.join(path)} {'/'.join(a.option_strings) or a.dest}" for path, a in _all_actions(build_parser())
            if a.type in (int, float)]
    assert bare == [], bare


@FUZZ
@given(lo=st.integers(-1000, 1000), span=st.integers(0, 10**6), text=OPTION_VALUES)
def test_argtypes_accept_in_range_or_refuse_with_the_range(lo, span, text):
    import argparse

    from bot.argtypes import float_range, int_range

    hi = lo + span
    for parse in (int_range(lo, hi), float_range(lo, hi)):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as exc:
            assert f"from {lo} to {hi}" in str(exc) or f"from {lo:g} to {hi:g}" in str(exc)
            assert "\n" not in str(exc)
            continue
        assert lo <= value <= hi and math.isfinite(value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:70000", "http://127.0.0.1:-1", "http://[::1", "ftp://x",
                                 "http://127.0.0.1:0"])
def test_a_source_url_with_a_bad_port_is_refused_at_load(url):
    with pytest.raises(ConfigError, match=r"sources\[0\]\.base_url: .*(1 to 65535|http\(s\))"):
        parse_settings({"sources": [{**SOURCE, "base_url": url}]}, "t.toml")
