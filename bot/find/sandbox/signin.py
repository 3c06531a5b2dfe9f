"""The sandbox's sign-in desk: a QR sign-in page and the visitor-cookie handshake.

Why in the sandbox: ``huaxiang login weibo`` drives a real browser through
Weibo's sign-in, and the adapter fetches a visitor cookie when m.weibo.cn
sends an anonymous client away. Both are tested end to end here, offline,
against pages and answers of the same shape:

- ``GET /signin?url=...`` shows a QR code and polls
  ``/signin/qrcode/check?qrid=...`` (retcode 50114001 waiting, 50114002
  scanned, 20000000 confirmed with ``data.url``); the browser then opens
  ``/signin/crossdomain?ticket=...&url=...``, which sets ``SUB``, ``SUBP``,
  ``SSOLoginState``, ``ALF`` and ``MLOGIN=1`` and redirects back.
- ``POST /visitor/genvisitor2`` answers JSONP
  ``visitor_gray_callback({"retcode":20000000,"data":{"sub":...,"subp":...}})``
  and sets the visitor ``SUB``/``SUBP``.
- With ``required`` on, reads without a live session are redirected as the
  real site does: anonymous clients to the visitor page, clients whose login
  expired to the sign-in page.

Test hooks (the phone and the clock): ``/_sandbox/scan`` confirms a QR code,
``/_sandbox/expire_sessions`` ends every login session.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

WAITING, SCANNED, CONFIRMED = 50114001, 50114002, 20000000


@dataclass
class Reply:
    status: int
    body: bytes
    ctype: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers=headers or [])


def read_cookies(header: str | None) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except Exception:  # a malformed Cookie header is simply no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


class SignInDesk:
    """QR codes, tickets and sessions of the sandbox's sign-in."""

    def __init__(self, required: bool = False):
        self.required = required
        self._lock = threading.Lock()
        self.qrcodes: dict[str, int] = {}            # qrid -> state
        self.tickets: dict[str, str] = {}            # ticket -> qrid
        self.logins: set[str] = set()                # live login SUB values
        self.expired: set[str] = set()
        self.visitors: set[str] = set()

    # -- test hooks ----------------------------------------------------------------------
    def scan(self, qrid: str | None = None) -> bool:
        """The phone scans and confirms a QR code (the newest waiting one by default)."""
        with self._lock:
            waiting = [q for q, s in self.qrcodes.items() if s != CONFIRMED]
            target = qrid or (waiting[-1] if waiting else None)
            if target not in self.qrcodes:
                return False
            self.qrcodes[target] = CONFIRMED
            return True

    def expire_sessions(self) -> int:
        with self._lock:
            n = len(self.logins)
            self.expired |= self.logins
            self.logins.clear()
            return n

    # -- requests ------------------------------------------------------------------------
    def handle(self, method: str, path: str, q: dict[str, list[str]], base_url: str) -> Reply | None:
        """The reply for a sign-in or visitor path, or None for any other path."""
        one = lambda k: (q.get(k) or [""])[0]  # noqa: E731 - tiny local accessor
        if method == "GET" and path == "/signin":
            return self._page(one("url") or base_url + "/")
        if method == "GET" and path == "/signin/qrcode/check":
            return self._check(one("qrid"), one("url") or base_url + "/")
        if method == "GET" and path == "/signin/crossdomain":
            return self._crossdomain(one("ticket"), one("url") or base_url + "/")
        if method == "POST" and path == "/visitor/genvisitor2":
            return self._genvisitor()
        if method == "GET" and path == "/visitor/visitor":
            return Reply(200, _VISITOR_PAGE.encode("utf-8"), "text/html; charset=utf-8")
        if method == "GET" and path == "/":
            return Reply(200, b"<!doctype html><meta charset=utf-8><title>m.weibo.cn sandbox</title><p>ok</p>",
                         "text/html; charset=utf-8")
        if method == "GET" and path == "/api/config":
            return None          # answered by config() with the request's cookies
        if path == "/_sandbox/scan":
            return _json({"ok": int(self.scan(one("qrid") or None))})
        if path == "/_sandbox/expire_sessions":
            return _json({"ok": 1, "expired": self.expire_sessions()})
        if path == "/_sandbox/qrcodes":
            with self._lock:
                return _json(dict(self.qrcodes))
        return None

    def config(self, cookie_header: str | None) -> Reply:
        """``/api/config``: whether this cookie is a signed-in session (and whose), as m.weibo.cn says."""
        sub = read_cookies(cookie_header).get("SUB")
        with self._lock:
            login = bool(sub and sub in self.logins)
        data: dict[str, Any] = {"login": login, "st": secrets.token_hex(3)}
        if login:
            data["uid"] = "1000000000"
        return _json({"ok": 1, "data": data})

    def gate(self, cookie_header: str | None, base_url: str) -> Reply | None:
        """None when the request may be served; else the redirect the real site sends."""
        if not self.required:
            return None
        sub = read_cookies(cookie_header).get("SUB")
        with self._lock:
            if sub and (sub in self.logins or sub in self.visitors):
                return None
            expired = bool(sub and sub in self.expired)
        if expired:
            target = f"{base_url}/signin?entry=mweibo&r={quote(base_url + '/', safe='')}"
        else:
            target = f"{base_url}/visitor/visitor?entry=sinawap&a=enter&url={quote(base_url + '/', safe='')}"
        return Reply(302, b"", "text/html", headers=[("Location", target)])

    def _page(self, url: str) -> Reply:
        qrid = secrets.token_hex(8)
        with self._lock:
            self.qrcodes[qrid] = WAITING
        page = _SIGNIN_PAGE.replace("{QRID}", qrid).replace("{URL}", json.dumps(url).replace("</", "<\\/"))
        return Reply(200, page.encode("utf-8"), "text/html; charset=utf-8")

    def _check(self, qrid: str, url: str) -> Reply:
        with self._lock:
            state = self.qrcodes.get(qrid)
            if state is None:
                return _json({"retcode": 50114004, "msg": "二维码已失效"})
            if state != CONFIRMED:
                return _json({"retcode": state, "msg": "等待扫码" if state == WAITING else "已扫码"})
            ticket = secrets.token_hex(12)
            self.tickets[ticket] = qrid
            del self.qrcodes[qrid]
        target = f"/signin/crossdomain?ticket={ticket}&url={quote(url, safe='')}"
        return _json({"retcode": CONFIRMED, "msg": "succ", "data": {"url": target}})

    def _crossdomain(self, ticket: str, url: str) -> Reply:
        with self._lock:
            if self.tickets.pop(ticket, None) is None:
                return _json({"retcode": 50114004, "msg": "ticket 无效"}, status=400)
            sub = "_2A25" + secrets.token_urlsafe(24)
            self.logins.add(sub)
        alf = str(int(time.time()) + 30 * 86400)
        cookies = [("SUB", sub, "; HttpOnly"), ("SUBP", "0033WrSXqPxfM725Ws9jqgMF55529P9D9W5" + secrets.token_hex(6), ""),
                   ("SSOLoginState", str(int(time.time())), ""), ("ALF", alf, ""), ("MLOGIN", "1", "")]
        headers = [("Set-Cookie", f"{k}={v}; Path=/{extra}") for k, v, extra in cookies]
        headers.append(("Location", url))
        return Reply(302, b"", "text/html", headers=headers)

    def _genvisitor(self) -> Reply:
        sub = "_2AkM" + secrets.token_urlsafe(24)
        subp = "0033WrSXqPxfM72-Ws9jqgMF55529P9D9W" + secrets.token_hex(6)
        with self._lock:
            self.visitors.add(sub)
        data = {"retcode": CONFIRMED, "msg": "succ", "data": {"sub": sub, "subp": subp, "tid": secrets.token_hex(10),
                                                            "new_tid": True}}
        body = "window.visitor_gray_callback && visitor_gray_callback(" + json.dumps(data) + ");"
        headers = [("Set-Cookie", f"SUB={sub}; Path=/; HttpOnly"), ("Set-Cookie", f"SUBP={subp}; Path=/")]
        return Reply(200, body.encode("utf-8"), "application/javascript; charset=utf-8", headers=headers)


_VISITOR_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Sina Visitor System</title></head>
<body><p>Sina Visitor System</p></body></html>"""

# The QR "image" is the code's id in a frame: the sandbox has no phone app to read a real one.
_SIGNIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>登录 - 新浪微博 (sandbox)</title></head>
<body>
<h1>微博登录</h1>
<p>请使用微博客户端扫码登录</p>
<div id="qrcode" data-qrid="{QRID}" style="border:8px solid #000;width:180px;height:180px;font:12px monospace">{QRID}</div>
<p id="status">等待扫码</p>
<script>
const qrid = "{QRID}";
const back = {URL};
async function poll() {
  try {
    const r = await fetch("/signin/qrcode/check?qrid=" + qrid + "&url=" + encodeURIComponent(back));
    const j = await r.json();
    if (j.retcode === 20000000) { document.getElementById("status").textContent = "登录成功"; location.href = j.data.url; return; }
    if (j.retcode === 50114002) { document.getElementById("status").textContent = "已扫码，请在手机上确认"; }
    if (j.retcode === 50114004) { document.getElementById("status").textContent = "二维码已失效，请刷新"; return; }
  } catch (e) {}
  setTimeout(poll, 300);
}
poll();
</script>
</body></html>
"""
