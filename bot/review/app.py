"""The local review page: a manager approves, edits or rejects the queue.

Security, because the page shows strangers' text and can approve sends:
- Access needs the token printed by ``huaxiang review`` (stored beside the
  database, mode 0600, never in the database or its exports). Opening
  ``/?token=...`` once sets an HttpOnly, SameSite=Strict session cookie
  derived from the token; scripts may send ``Authorization: Bearer``.
- Every state-changing request needs the ``X-CSRF-Token`` header, whose
  value only a page (or client) that is already authenticated can read.
- Post text is only ever rendered with ``textContent``; the Content Security
  Policy allows no inline script, so injected markup cannot run either way.
- With a loopback bind, requests naming another Host are refused (DNS rebinding).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from config import Settings
from storage import engagement as store
from storage.db import connect

from bot import queue_ops
from bot.errors import HuaxiangError
from bot.worklist import post_link, profile_link

COOKIE = "hx_session"
# Queue ids are SQLite INTEGERs: a larger number can name no item and must be
# a 422, not an OverflowError (500) from the driver.
ItemId = Annotated[int, Field(ge=1, le=2**63 - 1)]
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# The report is self-contained (inline styles, data: images); it still may not run script.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'none'"


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


def _static(name: str) -> str:
    return resources.files("bot.review").joinpath("static").joinpath(name).read_text(encoding="utf-8")


class IdsBody(BaseModel):
    ids: list[ItemId] = Field(..., min_length=1, description="queue item ids")
    by: str = Field(..., description="the reviewer's name (recorded in the audit log)")
    reason: str = Field("", description="why (for rejections)")


class EditBody(BaseModel):
    text: str = Field(..., description="the new draft text")
    by: str = Field(..., description="the reviewer's name")


class ChangeOut(BaseModel):
    item_id: int
    ok: bool
    message: str


def create_app(db_path: str | Path, settings: Settings, token: str,
               allowed_hosts: set[str] | None = None) -> FastAPI:
    """The review app for one database. ``allowed_hosts`` (Host header names)
    guards a loopback server against DNS rebinding; None accepts any."""
    app = FastAPI(title="huaxiang review", version="1", openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, description="The engagement queue: read it, approve, reject or edit drafts.")
    session_value = _derive(token, "session")
    csrf_value = _derive(token, "csrf")
    local = threading.local()

    def db():
        conn = getattr(local, "db", None)
        if conn is None:
            conn = connect(db_path, busy_timeout_ms=settings.database.busy_timeout_ms)
            local.db = conn
        return conn

    @app.middleware("http")
    async def headers(request: Request, call_next):
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if allowed_hosts is not None and host not in allowed_hosts:
            return JSONResponse({"detail": "unexpected Host header"}, status_code=400)
        refusal = _refuse_unauthorised_change(request)
        # Before the body is parsed: a stranger's malformed body gets a 401/403,
        # never a 422 that echoes what the endpoint expects.
        response = refusal if refusal is not None else await call_next(request)
        response.headers["Content-Security-Policy"] = REPORT_CSP if request.url.path == "/report" else CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    def authenticated(request: Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie, session_value):
            return True
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip(), token):
            return True
        return False

    def need_auth(request: Request) -> None:
        if not authenticated(request):
            raise HTTPException(status_code=401, detail="log in with the token printed by `huaxiang review`")

    def need_csrf(request: Request) -> None:
        need_auth(request)
        sent = request.headers.get("x-csrf-token", "")
        if not sent or not hmac.compare_digest(sent, csrf_value):
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")

    def _refuse_unauthorised_change(request: Request) -> Response | None:
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.url.path.startswith("/api/"):
            return None
        try:
            need_csrf(request)
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return None

    def _login_response(target: str = "/") -> Response:
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(COOKIE, session_value, httponly=True, samesite="strict", path="/")
        return resp

    @app.get("/", include_in_schema=False)
    def index(request: Request, token_param: str | None = Query(None, alias="token")):
        if token_param is not None:
            if hmac.compare_digest(token_param, token):
                return _login_response("/")
            return HTMLResponse(_static("login.html").replace("<!--error-->", "<p class=error>That token is not right.</p>"),
                                status_code=401)
        if not authenticated(request):
            return HTMLResponse(_static("login.html"), status_code=401)
        return HTMLResponse(_static("index.html"))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request):
        form = (await request.body()).decode("utf-8", "replace")
        from urllib.parse import parse_qs

        given = (parse_qs(form).get("token") or [""])[0].strip()
        if given and hmac.compare_digest(given, token):
            return _login_response("/")
        return HTMLResponse(_static("login.html").replace("<!--error-->", "<p class=error>That token is not right.</p>"),
                            status_code=401)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        types = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
        if name not in types:
            raise HTTPException(status_code=404)
        return Response(_static(name), media_type=types[name])

    @app.get("/api/session", summary="CSRF token and filter choices for the page", dependencies=[Depends(need_auth)])
    def session() -> dict[str, Any]:
        return {"csrf": csrf_value, "statuses": list(store.ALL_STATUSES),
                "kinds": ["reply", "repost", "group_reply", "follow"], "audiences": store.audience_names(db()),
                "max_length": settings.engagement.max_length, "send_mode": settings.engagement.send_mode}

    @app.get("/api/counts", summary="Items per status", dependencies=[Depends(need_auth)])
    def counts() -> dict[str, int]:
        return store.queue_counts(db())

    @app.get("/api/items", summary="Queue items with post, profile, tier, reason and score",
             dependencies=[Depends(need_auth)])
    def items(status: str | None = None, audience: str | None = None, kind: str | None = None,
              limit: int = Query(500, ge=1, le=5000)) -> list[dict[str, Any]]:
        rows = store.list_items(db(), status=status or None, audience=audience or None, kind=kind or None, limit=limit)
        for r in rows:
            r["post_link"] = post_link(r["platform"], r["post_pid"], r["post_url"], settings)
            r["profile_link"] = profile_link(r["platform"], r["target_uid"], r["user_url"])
        return rows

    @app.get("/api/items/{item_id}", summary="One item with its audit history, send log and outcomes",
             dependencies=[Depends(need_auth)])
    def item(item_id: int = PathParam(..., ge=1, le=2**63 - 1)) -> dict[str, Any]:
        detail = store.item_detail(db(), item_id)
        if detail is None:
            raise HTTPException(status_code=404, detail=f"queue item {item_id} does not exist")
        return {"item": detail, "audit": store.audit_for(db(), item_id), "send_log": store.send_log_for(db(), item_id),
                "outcomes": store.outcomes_for(db(), item_id)}

    @app.post("/api/items/approve", summary="Approve items (needs the reviewer's name)", response_model=list[ChangeOut],
              dependencies=[Depends(need_csrf)])
    def approve(body: IdsBody) -> list[dict[str, Any]]:
        try:
            return [c.__dict__ for c in queue_ops.approve(db(), body.ids, body.by)]
        except HuaxiangError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.post("/api/items/reject", summary="Reject items", response_model=list[ChangeOut],
              dependencies=[Depends(need_csrf)])
    def reject(body: IdsBody) -> list[dict[str, Any]]:
        try:
            return [c.__dict__ for c in queue_ops.reject(db(), body.ids, body.by, body.reason)]
        except HuaxiangError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.post("/api/items/{item_id}/edit", summary="Change a draft (an approved item returns to pending)",
              dependencies=[Depends(need_csrf)])
    def edit(item_id: int = PathParam(..., ge=1, le=2**63 - 1), body: EditBody = Body(...)) -> dict[str, Any]:
        try:
            queue_ops.edit(db(), item_id, body.text, body.by, settings)
        except HuaxiangError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        return store.item_detail(db(), item_id) or {}

    @app.get("/report", summary="The campaign report (self-contained HTML)", dependencies=[Depends(need_auth)],
             response_class=HTMLResponse)
    def report():
        try:
            from bot.report import render_report
        except ImportError:
            return HTMLResponse("<!doctype html><meta charset=utf-8><title>report</title>"
                                "<p>The report is not available in this installation yet.</p>", status_code=503)
        return HTMLResponse(render_report(db(), settings))

    return app
