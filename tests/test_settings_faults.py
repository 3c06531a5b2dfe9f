"""Settings that used to end in a traceback (issue 17.8): a bad time zone,
an unusable JSON log file, a non-ASCII secret, an XLSX export to a full disk."""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
from contextlib import contextmanager

import pytest

import bot.report.exports.writers as writers
from bot.logs import add_json_file_handler
from storage.db import connect
from test_export import seed_fixture


@pytest.fixture
def seeded(tmp_path, cli):
    db = connect(tmp_path / "huaxiang.db")
    seed_fixture(db)
    db.close()


def _one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err and "Exception ignored" not in err, err
    return lines[0]


@pytest.mark.parametrize("cmd", [["plan"], ["send", "--dry-run"], ["status"], ["run", "--once"]])
def test_an_unknown_time_zone_is_refused_at_load_naming_the_key(seeded, cli, tmp_path, cmd):
    (tmp_path / "huaxiang.toml").write_text('[engagement]\ntimezone = "Beijing"\n', encoding="utf-8")
    code, out, err = cli(*cmd)
    line = _one_error_line(err)
    assert code == 1 and "huaxiang.toml: engagement.timezone: unknown time zone 'Beijing'" in line


@pytest.fixture
def device(tmp_path) -> str:
    if os.geteuid() != 0:
        return "/dev/full"
    node = tmp_path / "full"          # as root, a private node: a regression must not rotate the real /dev/full away
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except OSError:                   # a container without CAP_MKNOD: a pipe is refused the same way
        os.mkfifo(node)
    return str(node)


@pytest.mark.parametrize("where,says", [("logs", "is a folder"), ("missing/h.jsonl", "does not exist"),
                                         ("DEVICE", "is not a regular file")])
def test_an_unusable_json_log_file_is_one_clear_line(cli, tmp_path, device, where, says):
    (tmp_path / "logs").mkdir()
    target = device if where == "DEVICE" else where
    (tmp_path / "huaxiang.toml").write_text(f'[logging]\njson_file = "{target}"\n', encoding="utf-8")
    code, out, err = cli("sandbox", "world", "--users", "5")
    line = _one_error_line(err)
    assert code == 1 and "huaxiang.toml: logging.json_file:" in line and says in line, line
    if where == "DEVICE":
        assert not stat.S_ISREG(os.stat(device).st_mode) and not os.path.exists(device + ".1")


def test_a_json_log_that_cannot_be_written_warns_once(tmp_path, capsys):
    handler = add_json_file_handler(str(tmp_path / "h.jsonl"), 10_000_000, 1)
    try:
        def full(*_a, **_k):
            raise OSError(errno.ENOSPC, "No space left on device")

        handler.stream.write = full
        log = logging.getLogger("huaxiang.test")
        for _ in range(3):
            log.warning("a line that cannot be written")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.stream = None
    err = capsys.readouterr().err
    assert err.count("cannot write the JSON log") == 1 and "No space left on device" in err
    assert "Logging error" not in err and "Traceback" not in err


CRAWL_CONFIG = """
[[sources]]
name = "sb"
platform = "sandbox"
base_url = "http://127.0.0.1:9"
cookie_env = "HX_TEST_COOKIE"
min_interval_s = 0.0

[[queries]]
name = "q"
source = "sb"
kind = "topic"
value = "健身"
"""


@pytest.mark.parametrize("secret", ["SUB=中文cookie", "SUB=abc\u201d", "SUB=a\nb"])
def test_a_non_ascii_cookie_is_a_clear_error_without_the_secret(cli, tmp_path, monkeypatch, secret):
    (tmp_path / "huaxiang.toml").write_text(CRAWL_CONFIG, encoding="utf-8")
    monkeypatch.setenv("HX_TEST_COOKIE", secret)
    code, out, err = cli("crawl")
    text = " ".join((out + err).split()).replace("\\[", "[")      # rich wraps and escapes the table's notes
    assert code == 1 and "Traceback" not in out + err, err
    assert "sources[0].cookie_env: the cookie in environment variable HX_TEST_COOKIE has a character" in text, text
    assert secret.strip() not in out + err and "中文" not in out + err


def test_a_non_ascii_token_file_is_a_clear_error(tmp_path):
    from config import ConfigError, parse_settings, resolve_secret

    token = tmp_path / "token.txt"
    token.write_text("abc\u00e9def", encoding="utf-8")
    s = parse_settings({"sources": [{"name": "w", "platform": "weibo", "token_file": str(token)}]}, "t.toml")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.token_file: the token .* cannot carry \(non-ASCII"):
        resolve_secret(s, s.sources[0], "token")


class _FullDisk(io.RawIOBase):
    """A file on a disk that fills up after a few kilobytes."""

    def __init__(self):
        self.pos = 0

    def writable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, pos, whence=0):
        self.pos = pos if whence == 0 else self.pos + pos
        return self.pos

    def write(self, b):
        if self.pos + len(b) > 6000:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.pos += len(b)
        return len(b)


def test_xlsx_export_to_a_full_disk_is_one_line(seeded, cli, tmp_path, monkeypatch):
    real = writers.atomic_file

    @contextmanager
    def full_disk(path, mode="w", **kw):
        if "b" not in mode:
            with real(path, mode, **kw) as fh:
                yield fh
            return
        with io.BufferedWriter(_FullDisk()) as fh:
            yield fh

    import gc
    import sys

    monkeypatch.setattr(writers, "atomic_file", full_disk)
    unraisable = []          # what Python would print as "Exception ignored in: ..." after our one line
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(f"{u.object!r}: {u.exc_value!r}"))
    code, out, err = cli("export", "audience", "1", "--format", "xlsx", "-o", "a.xlsx")
    gc.collect()                      # the abandoned zip archive's finaliser runs here, if it was left open
    assert code == 1 and "a.xlsx: cannot write (No space left on device)" in _one_error_line(err)
    assert unraisable == []
