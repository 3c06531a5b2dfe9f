"""Shared fixtures. Area-specific fixtures live in the area's own test files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from config import Settings, parse_settings
from storage.db import connect

REPO = Path(__file__).resolve().parent.parent

# The suite analyses hundreds of small corpora; the sentence encoder would
# embed each at ~100 posts/s. Words alone everywhere, through the same
# environment override a person would use (subprocesses inherit it), except
# in tests/test_semantic.py and the demo test, which use the real encoder.
os.environ["HUAXIANG__ANALYSIS__ENCODER"] = "words"


def words_only(settings: Settings) -> Settings:
    settings.analysis.encoder = "words"
    return settings


@pytest.fixture
def db(tmp_path):
    """A migrated database in a temporary folder."""
    database = connect(tmp_path / "test.db")
    yield database
    database.close()


@pytest.fixture
def settings() -> Settings:
    return words_only(Settings())


def make_settings(raw: dict, file: str = "test.toml") -> Settings:
    raw = {**raw, "analysis": {"encoder": "words", **raw.get("analysis", {})}}
    return parse_settings(raw, file)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run the CLI in-process: ``cli("--db", "x.db", "import", f) -> (code, out, err)``.

    Runs inside tmp_path so ./huaxiang.toml and ./huaxiang.db never leak
    between tests.
    """
    from bot.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        import io
        from contextlib import redirect_stderr, redirect_stdout

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue(), err.getvalue()

    return run


def run_cli_subprocess(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real console entry point in a child process (for kill/signal tests)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "bot", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


# Flags that keep headless Chromium off the (closed) network and quiet.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture
def browser_page(tmp_path):
    """A Playwright page in Debian's Chromium; skips with the reason when either is missing.

    .ci/run installs the chromium package; playwright comes from the [test] extra.
    """
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()


ARTIFACTS = REPO / "test-artifacts"


APPROVER_PASSWORD = "test approver password"
_APPROVER_HASH: list[str] = []      # one scrypt hash for every test account (hashing costs ~50 ms)


def approver(db_or_path, *names: str, role: str = "approver") -> str:
    """Make each name (default "alice") an active review account with ``role`` and return the first.

    Approving needs an account allowed to approve (bot.engage.queue_ops), so a test
    that approves with a name calls this first; ``db_or_path`` is a connection
    or a database file (for tests that drive the CLI with ``--db``).
    Idempotent: an existing account is left as it is. The password is
    APPROVER_PASSWORD."""
    from bot.engage import accounts
    from storage import accounts as account_store
    from storage.db import transaction

    if not _APPROVER_HASH:
        _APPROVER_HASH.append(accounts.hash_password(APPROVER_PASSWORD))
    names = names or ("alice",)
    own = not isinstance(db_or_path, sqlite3.Connection)
    db = connect(db_or_path) if own else db_or_path
    try:
        with transaction(db):
            for name in names:
                if account_store.get_account(db, accounts.check_name(name)) is None:
                    account_store.add_account(db, name, role, _APPROVER_HASH[0], "2026-01-01T00:00:00+00:00")
    finally:
        if own:
            db.close()
    return names[0]
