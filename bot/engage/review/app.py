"""The review page: a team approves, edits or rejects the queue.

Who may do what:
- With review accounts (``huaxiang users add``), people sign in with their
  account name and password; the session cookie (HttpOnly, SameSite=Strict)
  expires after ``[review] session_hours``; failed sign-ins are slowed per
  account. The account's role decides: viewer reads, editor edits, rejects
  and settles follow to-dos, approver approves too. Every decision is
  recorded under the account's name (the ``by`` a client sends is ignored).
  The access token then only reads (scripts: ``Authorization: Bearer``).
- Without accounts, the token printed by ``huaxiang review`` (stored beside
  the database, mode 0600) signs in to read, edit and reject under the name
  typed on the page, but never to approve: the token is nobody's account, and
  approving needs an approver account (the page says so).

Security, because the page shows strangers' text and can approve sends:
- Every state-changing request needs the ``X-CSRF-Token`` header, whose
  value only a page (or client) that is already signed in can read.
- Post text is only ever rendered with ``textContent``, isolated for bidi;
  the Content Security Policy allows no inline script.
- Credentials are compared as bytes, so any byte in a token, cookie or
  header is a 401/403, never a 500; request bodies over
  ``[review] max_body_bytes`` are refused with 413.
- With a loopback bind, requests naming another Host are refused (DNS rebinding).

How it is built: ``guard`` (the auth middleware: identifies the requester,
checks sign-in and CSRF before an API body is parsed, adds the security
headers), ``BodyLimit``, and routers (``pages``, ``api``) whose routes take
what they need as dependencies: the right (``auth.need``), the app's state and
the request's own database connection (``state.Db``), closed when the
request ends.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from config import Settings
from storage.db import opened

from bot.engage.review import api, pages
from bot.engage.review.auth import TokenKeys
from bot.engage.review.guard import BodyLimit, guard
from bot.engage.review.state import ReportRenderer, ReviewState
from bot.i18n import language, zone


def create_app(db_path: str | Path, settings: Settings, token: str, allowed_hosts: set[str] | None = None,
               *, fail_delay_s: float = 0.5, report: ReportRenderer | None = None) -> FastAPI:
    """The review app for one database. ``allowed_hosts`` (Host header names)
    guards a loopback server against DNS rebinding; None accepts any.
    ``fail_delay_s``: every failed sign-in waits this long before its answer.
    ``report(db, settings, lang=...)`` renders the campaign report served at
    ``/report`` (the review command passes ``bot.report.render_report``; the
    engage stage does not import the report stage); without it there is no
    ``/report``."""
    with opened(db_path, busy_timeout_ms=settings.database.busy_timeout_ms):
        pass                    # the schema up to date once; requests then open without migrating
    app = FastAPI(title="huaxiang review", version="2", openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, description="The engagement queue: read it, approve, reject or edit drafts.")
    app.state.review = ReviewState(Path(db_path), settings, TokenKeys.of(token), language(settings),
                                   zone(settings.engagement.timezone), allowed_hosts, fail_delay_s, report)
    app.middleware("http")(guard)
    app.include_router(pages.router)
    app.include_router(api.router)
    if report is not None:
        app.include_router(api.report_router)
    app.add_middleware(BodyLimit, limit=settings.review.max_body_bytes)
    return app
