"""The pages outside the API: sign-in, sign-out, the queue page and its static files."""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3
from importlib import resources
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bot.engage import accounts
from bot.engage.review.auth import COOKIE, current, same
from bot.engage.review.state import Db, State
from bot.i18n import t

router = APIRouter()

STATIC_TYPES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


def _static(name: str) -> str:
    return resources.files("bot.engage.review").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def _page(name: str, lang: str, error: str = "") -> str:
    """A static page with its {{key}} labels from the catalogue (HTML-escaped)."""
    text = _static(name).replace("<!--error-->", f"<p class=error>{html.escape(error)}</p>" if error else "")
    text = text.replace('<html lang="zh">', f'<html lang="{"zh-CN" if lang == "zh" else "en"}">')
    return re.sub(r"\{\{([a-z_.]+)\}\}", lambda m: html.escape(t(m.group(1), lang)), text)


def _login_page(db: sqlite3.Connection, lang: str, error: str = "", status: int = 401) -> HTMLResponse:
    name = "login.html" if accounts.accounts_enabled(db) else "login-token.html"
    return HTMLResponse(_page(name, lang, error), status_code=status)


def _signed_in(request: Request, value: str, max_age: int | None = None) -> Response:
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(COOKIE, value, httponly=True, samesite="strict", path="/", max_age=max_age,
                    secure=request.url.scheme == "https")
    return resp


@router.get("/", include_in_schema=False)
def index(request: Request, st: State, db: Db, token_param: str | None = Query(None, alias="token")) -> Response:
    with_accounts = accounts.accounts_enabled(db)
    if token_param is not None and not with_accounts:
        if same(token_param, st.keys.token):
            return _signed_in(request, st.keys.session)
        return _login_page(db, st.lang, t("login.token_bad", st.lang))
    w = current(request)
    if w is None or (w.role == "token" and with_accounts):
        return _login_page(db, st.lang)
    return HTMLResponse(_page("index.html", st.lang))


@router.post("/login", include_in_schema=False)
async def login(request: Request, st: State, db: Db) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    field_ = lambda k: (form.get(k) or [""])[0]  # noqa: E731
    if not accounts.accounts_enabled(db):
        if same(field_("token").strip(), st.keys.token):
            return _signed_in(request, st.keys.session)
        await asyncio.sleep(st.fail_delay_s)
        return _login_page(db, st.lang, t("login.token_bad", st.lang))
    client = request.client.host if request.client else "?"
    held = st.throttle.wait(client)
    if held:
        return _login_page(db, st.lang, t("login.slow", st.lang, seconds=held), status=429)
    account, wait = await asyncio.to_thread(accounts.authenticate, db, field_("name"), field_("password"))
    if account is None:
        st.throttle.failed(client)
        await asyncio.sleep(st.fail_delay_s)
        if wait:
            return _login_page(db, st.lang, t("login.slow", st.lang, seconds=wait), status=429)
        return _login_page(db, st.lang, t("login.bad", st.lang))
    st.throttle.succeeded(client)
    hours = st.settings.review.session_hours
    session_id, _ = await asyncio.to_thread(accounts.open_session, db, account, hours)
    return _signed_in(request, session_id, max_age=int(hours * 3600))


@router.post("/api/logout", include_in_schema=False)
def logout(request: Request, db: Db) -> Response:
    w = current(request)
    if w is not None and w.session_id:
        accounts.close_session(db, w.session_id)
    resp = JSONResponse({"ok": True})
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in STATIC_TYPES:
        raise HTTPException(status_code=404)
    return Response(_static(name), media_type=STATIC_TYPES[name])
