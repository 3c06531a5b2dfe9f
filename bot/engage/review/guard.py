"""What every request goes through before any route: the Host check (DNS
rebinding), who is asking, sign-in and CSRF for API state changes before
their body is parsed, the body size limit, and the security headers on
every answer, errors included.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.engage.review.auth import SAFE_METHODS, Who, check, identify
from bot.engage.review.state import ReviewState, review_state

log = logging.getLogger(__name__)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# The report is self-contained (inline styles, data: images); it still may not run script.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'none'"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-store"}


def _identify(st: ReviewState, request: Request) -> Who | None:
    with st.open_db() as db:
        return identify(db, request, st.keys)


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """The auth middleware (``app.middleware("http")``): identifies the requester
    (``request.state.who``, read by the routes' ``need`` dependencies) and answers
    every error, expected or not, as JSON with the security headers."""
    st = review_state(request)
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
    try:
        if st.allowed_hosts is not None and host not in st.allowed_hosts:
            raise HTTPException(status_code=400, detail="unexpected Host header")
        request.state.who = await run_in_threadpool(_identify, st, request)
        if request.method not in SAFE_METHODS and request.url.path.startswith("/api/"):
            # Before the body is parsed: a stranger's malformed body gets a 401/403,
            # never a 422 that echoes what the endpoint expects.
            check(request, "read", st.lang)
        response = await call_next(request)
    except HTTPException as exc:
        response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    except Exception:          # logged; the answer still carries the security headers
        log.exception("review page: %s %s failed", request.method, request.url.path)
        response = JSONResponse({"detail": "internal error (see the server log)"}, status_code=500)
    response.headers["Content-Security-Policy"] = REPORT_CSP if request.url.path == "/report" else CSP
    for k, v in SECURITY_HEADERS.items():
        response.headers[k] = v
    return response


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before any endpoint reads them."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
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
