"""Where the review page is: its URL and how to open it for a database.

Why here and not in the ``review`` command: ``demo`` tells the user how to
open the page too, and commands do not import each other.
"""

from __future__ import annotations

from pathlib import Path

from bot.engage.review.auth import load_or_create_token


def review_url(host: str, port: int, token: str) -> str:
    """The link a person opens: a wildcard bind is reached on loopback, IPv6 in brackets."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?token={token}"


def review_instructions(db_path: str | Path, port: int = 8765) -> str:
    """How to open the review page for this database (``demo`` prints it after its run)."""
    token = load_or_create_token(db_path)
    db_arg = "" if str(db_path) == "huaxiang.db" else f" --db {db_path}"
    return (f"review the queue in your browser: run `huaxiang{db_arg} review --port {port}`, "
            f"then open {review_url('127.0.0.1', port, token)}")
