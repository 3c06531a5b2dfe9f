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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import hmac
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from config import Settings
from storage import engagement as store
from storage.db import connect

from bot.engage import queue_ops
from bot.engage import accounts
from bot.errors import HuaxiangError
from bot.i18n import catalogue, language, t, zone
from bot.engage.review import cards

log = logging.getLogger(__name__)

COOKIE = "hx_session"
# Queue ids are SQLite INTEGERs: a larger number can name no item and must be
# a 422, not an OverflowError (500) from the driver.
ItemId = Annotated[int, Field(ge=1, le=2**63 - 1)]
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# The report is self-contained (inline styles, data: images); it still may not run script.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'none'"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-store"}
# The token is nobody's account, so it never approves: approving needs an approver account.
TOKEN_RIGHTS = frozenset({"read", "edit", "reject", "todo", "undo"})


def token_path(db_path: str | Path) -> Path:
    """The token lives beside the database file (``huaxiang.db.review-token``)."""
    return Path(str(db_path) + ".review-token")


def load_or_create_token(db_path: str | Path) -> str:
    """The review token, generated on first use and kept with mode 0600."""
    path = token_path(db_path)
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            os.chmod(path, 0o600)
            return value
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)
    return value


def _derive(token: str, purpose: str) -> str:
    return hmac.new(token.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of text from the wire. As bytes: ``hmac.compare_digest``
    raises TypeError on non-ASCII str, which would turn a bad credential into a 500."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _static(name: str) -> str:
    return resources.files("bot.engage.review").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def _page(name: str, lang: str, error: str = "") -> str:
    """A static page with its {{key}} labels from the catalogue (HTML-escaped)."""
    import html
    import re

    text = _static(name).replace("<!--error-->", f"<p class=error>{html.escape(error)}</p>" if error else "")
    text = text.replace('<html lang="zh">', f'<html lang="{"zh-CN" if lang == "zh" else "en"}">')
    return re.sub(r"\{\{([a-z_.]+)\}\}", lambda m: html.escape(t(m.group(1), lang)), text)


class IdsBody(BaseModel):
    ids: list[ItemId] = Field(..., min_length=1, max_length=1000, description="queue item ids")
    by: str = Field("", max_length=200, description="the reviewer's name (token sign-in only; accounts use their own)")
    reason: str = Field("", max_length=2000, description="why (for rejections)")


class EditBody(BaseModel):
    text: str = Field(..., max_length=20000, description="the new draft text")
    by: str = Field("", max_length=200, description="the reviewer's name (token sign-in only)")


class ByBody(BaseModel):
    by: str = Field("", max_length=200, description="the reviewer's name (token sign-in only)")


class ChangeOut(BaseModel):
    item_id: int
    ok: bool
    message: str
    status: str | None = None        # the item's status afterwards (the page words it in its own language)
    code: str = ""                   # why it was refused: message catalogue key err.<code>
    values: dict[str, str] = {}


@dataclass
class Who:
    """The person behind a request: an account, or the token holder (name from the body)."""

    name: str | None
    role: str
    rights: frozenset[str]
    csrf: str
    accounts_mode: bool = False
    session_id: str = field(default="", repr=False)

    def actor(self, typed: str) -> str:
        return self.name if self.accounts_mode and self.name else typed


class SignInThrottle:
    """Failed sign-ins per client address (any account name, known or not): after
    ``free`` failures in a row each further try waits twice as long, up to ``cap`` seconds.
    The per-account counter (``bot.engage.accounts``) slows guessing one password;
    this slows trying many names from one place."""

    def __init__(self, free: int = 5, cap: int = 300):
        self.free, self.cap = free, cap
        self._fails: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str, now: float | None = None) -> int:
        import time

        with self._lock:
            count, last = self._fails.get(client, (0, 0.0))
        if count < self.free:
            return 0
        left = min(self.cap, 2 ** (count - self.free + 1)) - ((now or time.monotonic()) - last)
        return max(0, int(left + 0.999))

    def failed(self, client: str) -> None:
        import time

        with self._lock:
            count, _ = self._fails.get(client, (0, 0.0))
            self._fails[client] = (count + 1, time.monotonic())
            if len(self._fails) > 10_000:        # bounded memory under a spray of addresses
                self._fails.pop(next(iter(self._fails)))

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before any endpoint reads them."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        too_big = not declared.isdigit() or int(declared) > self.limit
        chunks, size, more = [], 0, not too_big
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            too_big = size > self.limit
            if too_big:
                break
        if too_big:
            response = JSONResponse({"detail": f"request body over {self.limit} bytes"}, status_code=413,
                                    headers={**SECURITY_HEADERS, "Content-Security-Policy": CSP})
            return await response(scope, receive, send)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def _who(request: Request, db, token: str, token_session: str, token_csrf: str) -> Who | None:
    """Who is asking: a live account session, else the token (full rights only without accounts)."""
    with_accounts = accounts.accounts_enabled(db)
    cookie = request.cookies.get(COOKIE, "")
    if with_accounts and cookie:
        found = accounts.session(db, cookie)
        if found is not None:
            account, csrf = found
            return Who(account.name, account.role, accounts.PERMISSIONS[account.role], csrf, True, cookie)
    auth = request.headers.get("authorization", "")
    by_token = same(cookie, token_session) or (auth.lower().startswith("bearer ") and same(auth[7:].strip(), token))
    if by_token:
        rights = frozenset({"read"}) if with_accounts else TOKEN_RIGHTS
        return Who(None, "token", rights, token_csrf, with_accounts)
    return None


def _local_day_bound(day: str | None, tz, end: bool) -> str | None:
    """A YYYY-MM-DD typed on the page, in the campaign's zone, as a UTC ISO bound (``end``: the next midnight)."""
    if not day:
        return None
    start = datetime.fromisoformat(day).replace(tzinfo=tz)
    return (start + timedelta(days=1 if end else 0)).astimezone(timezone.utc).isoformat()


def create_app(db_path: str | Path, settings: Settings, token: str, allowed_hosts: set[str] | None = None,
               *, fail_delay_s: float = 0.5) -> FastAPI:
    """The review app for one database. ``allowed_hosts`` (Host header names)
    guards a loopback server against DNS rebinding; None accepts any.
    ``fail_delay_s``: every failed sign-in waits this long before its answer."""
    app = FastAPI(title="huaxiang review", version="2", openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, description="The engagement queue: read it, approve, reject or edit drafts.")
    lang, tz = language(settings), zone(settings.engagement.timezone)
    token_session, token_csrf = _derive(token, "session"), _derive(token, "csrf")
    local = threading.local()

    def db():
        conn = getattr(local, "db", None)
        if conn is None:
            conn = connect(db_path, busy_timeout_ms=settings.database.busy_timeout_ms)
            local.db = conn
        return conn

    def who(request: Request) -> Who | None:
        return _who(request, db(), token, token_session, token_csrf)

    def check(request: Request, right: str) -> Who:
        w = who(request)
        if w is None:
            raise HTTPException(status_code=401, detail="sign in first (account, or the token printed by `huaxiang review`)")
        if request.method not in ("GET", "HEAD", "OPTIONS") and not same(request.headers.get("x-csrf-token"), w.csrf):
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        if right == "approve" and w.role == "token":
            raise HTTPException(status_code=403, detail=t("err.no_approver", lang))
        if right not in w.rights:
            raise HTTPException(status_code=403, detail=f"your role ({w.role}) may not {right}")
        return w

    def need(right: str):
        def dependency(request: Request) -> Who:
            return check(request, right)
        return dependency

    @app.middleware("http")
    async def headers(request: Request, call_next):
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        try:
            if allowed_hosts is not None and host not in allowed_hosts:
                raise HTTPException(status_code=400, detail="unexpected Host header")
            if request.method not in ("GET", "HEAD", "OPTIONS") and request.url.path.startswith("/api/"):
                # Before the body is parsed: a stranger's malformed body gets a 401/403,
                # never a 422 that echoes what the endpoint expects.
                check(request, "read")
            response: Response = await call_next(request)
        except HTTPException as exc:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        except Exception:          # logged; the answer still carries the security headers
            log.exception("review page: %s %s failed", request.method, request.url.path)
            response = JSONResponse({"detail": "internal error (see the server log)"}, status_code=500)
        response.headers["Content-Security-Policy"] = REPORT_CSP if request.url.path == "/report" else CSP
        for k, v in SECURITY_HEADERS.items():
            response.headers[k] = v
        return response

    _pages(app, db, who, lang, token, token_session, settings, fail_delay_s)
    _read_api(app, db, need, settings, lang, tz)
    _write_api(app, db, need, settings)
    app.add_middleware(BodyLimit, limit=settings.review.max_body_bytes)
    return app


def _pages(app: FastAPI, db, who, lang: str, token: str, token_session: str, settings: Settings,
           fail_delay_s: float) -> None:
    """Sign-in, sign-out, the page itself and its static files."""
    throttle = SignInThrottle()

    def login_page(error: str = "", status: int = 401) -> HTMLResponse:
        name = "login.html" if accounts.accounts_enabled(db()) else "login-token.html"
        return HTMLResponse(_page(name, lang, error), status_code=status)

    def signed_in(request: Request, value: str, max_age: int | None = None) -> Response:
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, value, httponly=True, samesite="strict", path="/", max_age=max_age,
                        secure=request.url.scheme == "https")
        return resp

    @app.get("/", include_in_schema=False)
    def index(request: Request, token_param: str | None = Query(None, alias="token")):
        if token_param is not None and not accounts.accounts_enabled(db()):
            if same(token_param, token):
                return signed_in(request, token_session)
            return login_page(t("login.token_bad", lang))
        if who(request) is None or (who(request).role == "token" and accounts.accounts_enabled(db())):
            return login_page()
        return HTMLResponse(_page("index.html", lang))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request):
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        field_ = lambda k: (form.get(k) or [""])[0]  # noqa: E731
        if not accounts.accounts_enabled(db()):
            if same(field_("token").strip(), token):
                return signed_in(request, token_session)
            await asyncio.sleep(fail_delay_s)
            return login_page(t("login.token_bad", lang))
        client = request.client.host if request.client else "?"
        held = throttle.wait(client)
        if held:
            return login_page(t("login.slow", lang, seconds=held), status=429)
        account, wait = await asyncio.to_thread(_authenticate, db_factory=db, name=field_("name"),
                                                password=field_("password"))
        if account is None:
            throttle.failed(client)
            await asyncio.sleep(fail_delay_s)
            if wait:
                return login_page(t("login.slow", lang, seconds=wait), status=429)
            return login_page(t("login.bad", lang))
        throttle.succeeded(client)
        hours = settings.review.session_hours
        session_id, _ = await asyncio.to_thread(lambda: accounts.open_session(db(), account, hours))
        return signed_in(request, session_id, max_age=int(hours * 3600))

    @app.post("/api/logout", include_in_schema=False)
    def logout(request: Request):
        w = who(request)
        if w is not None and w.session_id:
            accounts.close_session(db(), w.session_id)
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        types = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
        if name not in types:
            raise HTTPException(status_code=404)
        return Response(_static(name), media_type=types[name])


def _authenticate(db_factory, name: str, password: str):
    return accounts.authenticate(db_factory(), name, password)


def _read_api(app: FastAPI, db, need, settings: Settings, lang: str, tz) -> None:
    """The read side: session facts, counts, items with their context, one item, the report."""

    @app.get("/api/session", summary="Who is signed in, CSRF token, messages and filter choices")
    def session(w: Who = Depends(need("read"))) -> dict[str, Any]:
        return {"csrf": w.csrf, "user": {"name": w.name, "role": w.role, "rights": sorted(w.rights)},
                "accounts": w.accounts_mode, "language": lang, "messages": catalogue(lang),
                "timezone": settings.engagement.timezone, "statuses": list(store.ALL_STATUSES),
                "kinds": ["reply", "repost", "group_reply", "follow"], "audiences": store.audience_names(db()),
                "max_length": settings.engagement.max_length, "send_mode": settings.engagement.send_mode,
                "undo_seconds": settings.review.undo_seconds, "second_approval": settings.review.second_approval}

    @app.get("/api/counts", summary="Items per status", dependencies=[Depends(need("read"))])
    def counts() -> dict[str, int]:
        return store.queue_counts(db())

    @app.get("/api/items", summary="Queue items with post, profile, context and allowed actions "
                                   "(X-Total-Count: items matching the filters)")
    def items(response: Response, status: str | None = None, audience: str | None = None, kind: str | None = None,
              limit: int = Query(500, ge=1, le=5000), offset: int = Query(0, ge=0, le=10**9),
              sort: str = Query("audience", pattern="^(audience|score|time)$"),
              q: str | None = Query(None, max_length=200),
              date_from: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
              date_to: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
              w: Who = Depends(need("read"))) -> list[dict[str, Any]]:
        try:
            since, until = _local_day_bound(date_from, tz, False), _local_day_bound(date_to, tz, True)
        except ValueError:
            raise HTTPException(status_code=422, detail="dates are YYYY-MM-DD") from None
        filters = dict(status=status or None, audience=audience or None, kind=kind or None)
        rows = store.list_items(db(), **filters, limit=limit, offset=offset, sort=sort, search=q or None,
                                since=since, until=until)
        total = store.count_items(db(), **filters, search=q or None, since=since, until=until)
        response.headers["X-Total-Count"] = str(total)
        return [_card(db(), r, settings, tz, w) for r in rows]

    @app.get("/api/items/{item_id}", summary="One item with its context, audit history, send log and outcomes")
    def item(item_id: int = PathParam(..., ge=1, le=2**63 - 1), w: Who = Depends(need("read"))) -> dict[str, Any]:
        detail = store.item_detail(db(), item_id)
        if detail is None:
            raise HTTPException(status_code=404, detail=f"queue item {item_id} does not exist")
        return {"item": _card(db(), detail, settings, tz, w), "audit": store.audit_for(db(), item_id),
                "send_log": store.send_log_for(db(), item_id), "outcomes": store.outcomes_for(db(), item_id)}

    @app.get("/report", summary="The campaign report (self-contained HTML)", dependencies=[Depends(need("read"))],
             response_class=HTMLResponse)
    def report(lang_param: str | None = Query(None, alias="lang", pattern="^(zh|en)$")):
        from bot.report import render_report

        return HTMLResponse(render_report(db(), settings, lang=lang_param))


def _card(db, row: dict[str, Any], settings: Settings, tz, w: Who) -> dict[str, Any]:
    first = queue_ops.first_approver(db, row["id"]) if settings.review.second_approval else None
    return cards.card(db, row, settings, tz, set(w.rights), first)


def _write_api(app: FastAPI, db, need, settings: Settings) -> None:
    """Decisions: approve, reject, edit, follow to-dos and undo; each under the deciding person's name."""

    def run(fn):
        try:
            out = fn()
        except HuaxiangError as exc:
            code = getattr(exc, "code", "")
            values = json.dumps({k: str(v) for k, v in getattr(exc, "values", {}).items()})   # ASCII-escaped
            raise HTTPException(status_code=400, detail=str(exc),
                                headers={"X-Error-Code": code, "X-Error-Values": values} if code else None) from None
        if isinstance(out, list):
            for change in out:
                item = store.get_item(db(), change["item_id"]) if change["ok"] else None
                change["status"] = item.status if item is not None else None
        return out

    @app.post("/api/items/approve", summary="Approve items (approvers)", response_model=list[ChangeOut])
    def approve(body: IdsBody, w: Who = Depends(need("approve"))) -> list[dict[str, Any]]:
        return run(lambda: [c.__dict__ for c in queue_ops.approve(
            db(), body.ids, w.actor(body.by), retry_failed=False, second_approval=settings.review.second_approval)])

    @app.post("/api/items/reject", summary="Reject items (editors and approvers)", response_model=list[ChangeOut])
    def reject(body: IdsBody, w: Who = Depends(need("reject"))) -> list[dict[str, Any]]:
        return run(lambda: [c.__dict__ for c in queue_ops.reject(db(), body.ids, w.actor(body.by), body.reason)])

    @app.post("/api/items/done", summary="Follow suggestions carried out by hand", response_model=list[ChangeOut])
    def done(body: IdsBody, w: Who = Depends(need("todo"))) -> list[dict[str, Any]]:
        return run(lambda: [c.__dict__ for c in queue_ops.settle_follow(db(), body.ids, w.actor(body.by), True)])

    @app.post("/api/items/dismiss", summary="Follow suggestions decided against", response_model=list[ChangeOut])
    def dismiss(body: IdsBody, w: Who = Depends(need("todo"))) -> list[dict[str, Any]]:
        return run(lambda: [c.__dict__ for c in queue_ops.settle_follow(db(), body.ids, w.actor(body.by), False)])

    @app.post("/api/items/{item_id}/edit", summary="Change a draft (an approved item returns to pending)")
    def edit(item_id: int = PathParam(..., ge=1, le=2**63 - 1), body: EditBody = Body(...),
             w: Who = Depends(need("edit"))) -> dict[str, Any]:
        run(lambda: queue_ops.edit(db(), item_id, body.text, w.actor(body.by), settings))
        return store.item_detail(db(), item_id) or {}

    @app.post("/api/items/{item_id}/undo", summary="Take back your last decision on an item (for a few seconds)")
    def undo(item_id: int = PathParam(..., ge=1, le=2**63 - 1), body: ByBody = Body(ByBody()),
             w: Who = Depends(need("undo"))) -> dict[str, Any]:
        run(lambda: queue_ops.undo(db(), item_id, w.actor(body.by), settings.review.undo_seconds))
        return store.item_detail(db(), item_id) or {}
