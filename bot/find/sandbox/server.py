"""The sandbox HTTP server: the world behind Weibo's endpoints, with faults.

Why the standard library server: it is one thread per connection, needs no
event loop, starts in milliseconds inside a test, and lets a fault handler
do unusual things (sleep, cut a body short, redirect) without fighting a
framework. Loopback only.

Reads: ``/api/container/getIndex`` (search, topic, super-topic, user search,
profile, timeline), ``/statuses/extend``, ``/comments/hotflow``.
Writes (Open API v2): ``/2/comments/create.json``, ``/2/statuses/repost.json``;
outcome reads ``/2/comments/to_me.json``, ``/2/friendships/followers/ids.json``,
``/2/account/get_uid.json``. Introspection: ``/_sandbox/actions``, ``/_sandbox/world``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.find.sandbox import payloads as P
from bot.find.sandbox.faults import FaultConfig, FaultPlan
from bot.find.sandbox.signin import Reply, SignInDesk
from bot.find.sandbox.world import DEFAULT_USERS, ME_UID, SPost, World, stable_hash
from bot.find.sandbox.vocab import OPT_OUTS, REPLIES

log = logging.getLogger(__name__)

READ_PATHS = ("/api/container/getIndex", "/statuses/extend", "/comments/hotflow")
COMMENT_PAGE = 20
# How the post's author answers our comment, by what it says (percent):
REPLY_RATE = {"answers": 40, "generic": 10, "repeated": 0}   # it quotes their post / fits any post / we said it before
QUESTION_BONUS = 30      # a comment that answers their post and asks them something gets answered more
OPT_OUT_RATE = {"answers": 5, "generic": 35}                  # of those who answer, share who ask us to stop
LIKE_RATE = {"answers": 20, "generic": 3}
FOLLOW_RATE = {"answers": 15, "generic": 2}                   # follow-backs, credited to the comment that earned it
_FILLER_BIGRAMS = frozenset("今天 分享 真的 一下 大家 开心 推荐 加油 记录 值得 不错 感觉 有点 继续 最近 周末 早上 终于 坚持".split())


def _han_bigrams(text: str) -> set[str]:
    runs = "".join(ch if "\u4e00" <= ch <= "\u9fff" or ch.isalnum() else " " for ch in text).split()
    return {r[i:i + 2] for r in runs for i in range(len(r) - 1)} - _FILLER_BIGRAMS


def comment_quality(post_text: str, text: str, said_before: bool) -> str:
    """answers | generic | repeated: what a person sees in a comment on their post."""
    if said_before:
        return "repeated"
    body = re.sub(r"#[^#]*#|\[[^\]]*\]|@\S+", " ", post_text)
    return "answers" if _han_bigrams(body) & _han_bigrams(text) else "generic"


def _one(q: dict[str, list[str]], key: str, default: str = "") -> str:
    vals = q.get(key)
    return vals[0] if vals else default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: unbuffered writes plus Nagle and
    # delayed ACKs would cost ~40 ms per keep-alive request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:   # quiet: the crawler logs what matters
        return

    # -- plumbing -------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str = "application/json; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _reply(self, reply: "Reply") -> None:
        """A sign-in desk reply (several Set-Cookie headers may go out)."""
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.ctype)
            self.send_header("Content-Length", str(len(reply.body)))
            for k, v in reply.headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None, truncate: bool = False) -> None:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if truncate:
            body = body[: max(1, len(body) // 2)]
        self._send(status, body, headers=headers)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        sb: SandboxServer = self.server.sandbox
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        form: dict[str, list[str]] = {}
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        sb._count(parts.path)
        try:
            desk = sb.signin.handle(method, parts.path, query, sb.base_url)
            if desk is None and method == "GET" and parts.path == "/api/config":
                desk = sb.signin.config(self.headers.get("Cookie"))
            if desk is None and parts.path in READ_PATHS:
                desk = sb.signin.gate(self.headers.get("Cookie"), sb.base_url)
            if desk is not None:
                self._reply(desk)
                return
            is_write_api = parts.path.startswith("/2/")
            fault = None
            if parts.path in READ_PATHS or (is_write_api and sb.faults.config.writes):
                key = parts.path + "?" + "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k != "access_token")
                if method == "POST":
                    key += "|" + "&".join(f"{k}={v}" for k, v in sorted(form.items()) if k != "access_token")
                fault = sb.faults.roll(key)
            if fault and self._early_fault(fault, sb):
                return
            if method == "GET" and parts.path.startswith("/detail/"):
                status, page = sb.detail_page(parts.path[len("/detail/"):])
                self._send(status, page.encode("utf-8"), "text/html; charset=utf-8")
                return
            status, obj, headers = sb.route(method, parts.path, query, form, dict(self.headers))
            if fault == "bad_payload" and status == 200:
                obj = _corrupt(obj, stable_hash(sb.faults.config.seed, self.path))
            self._json(status, obj, headers, truncate=(fault == "truncated" and status == 200))
        except Exception:  # a sandbox bug must show as a 500, not a hung client
            log.exception("sandbox: %s %s failed", method, parts.path)
            self._json(500, {"ok": 0, "msg": "sandbox internal error"})

    def _early_fault(self, fault: str, sb: "SandboxServer") -> bool:
        """Faults that replace the response entirely. Returns True when sent."""
        cfg = sb.faults.config
        if fault in ("http_418", "http_432"):
            self._send(int(fault[5:]), b"", "text/html")
            return True
        if fault == "http_429":
            self._send(429, b'{"ok":0,"msg":"rate limited"}', headers={"Retry-After": f"{cfg.retry_after_s:g}"})
            return True
        if fault in ("http_500", "http_503"):
            self._send(int(fault[5:]), b"<html><body>Service Unavailable</body></html>", "text/html")
            return True
        if fault == "captcha":
            self._json(200, {"ok": -100, "url": "https://passport.weibo.cn/signin/captcha?entry=mweibo&r=https%3A%2F%2Fm.weibo.cn"})
            return True
        if fault == "login_redirect":
            target = ("https://passport.weibo.cn/signin/login?entry=mweibo&r=https%3A%2F%2Fm.weibo.cn"
                      if stable_hash(self.path) % 2 else "https://visitor.passport.weibo.cn/visitor/visitor?entry=miniblog")
            self._send(302, b"", "text/html", headers={"Location": target})
            return True
        if fault == "slow":
            time.sleep(cfg.slow_s)
            return False              # then answer normally (if the client is still there)
        return False


def _corrupt(obj: Any, h: int) -> Any:
    """A payload with a field missing or of the wrong type, as real APIs sometimes send."""
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, dict):
        return obj
    if isinstance(data.get("cards"), list) and data["cards"]:
        flat = []
        for card in data["cards"]:
            flat.extend(card.get("card_group", []) if str(card.get("card_type")) == "11" else [card])
        victims = [c for c in flat if isinstance(c.get("mblog"), dict) or isinstance(c.get("user"), dict)]
        if victims:
            card = victims[h % len(victims)]
            if "mblog" in card:
                if h % 3 == 0:
                    card["mblog"].pop("id", None)
                    card["mblog"].pop("mid", None)
                elif h % 3 == 1:
                    card["mblog"]["user"] = "deleted"
                else:
                    card["mblog"] = ["not", "an", "object"]
            else:
                card["user"] = {"screen_name": "没有id"}
            return obj
    if isinstance(data.get("userInfo"), dict):
        data["userInfo"].pop("id", None)
        return obj
    if isinstance(data.get("data"), list) and data["data"]:
        data["data"][h % len(data["data"])]["user"] = None
        return obj
    if "longTextContent" in data:
        obj["data"] = "broken"
    return obj


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    sandbox: "SandboxServer"


class SandboxServer:
    """The running sandbox: ``base_url``, ``world``, ``actions``; ``stop()`` or use as a context manager."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0, faults: FaultConfig | None = None,
                 token: str | None = None, require_session: bool = False):
        self.world = world
        # Sign-in page, visitor handshake and (when required) session checks on reads.
        self.signin = SignInDesk(required=require_session)
        self.faults = FaultPlan(faults)
        self.token = token
        self.actions: list[dict[str, Any]] = []
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.sandbox = self
        self.host, self.port = self._httpd.server_address[:2]
        self.base_url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "SandboxServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> "SandboxServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    # -- routing --------------------------------------------------------------------
    def route(self, method: str, path: str, q: dict[str, list[str]], form: dict[str, list[str]],
              headers: dict[str, str]) -> tuple[int, Any, dict[str, str] | None]:
        if method == "GET" and path == "/api/container/getIndex":
            return 200, self._get_index(q), None
        if method == "GET" and path == "/statuses/extend":
            post = self.world.posts.get(_one(q, "id"))
            if post is None:
                return 200, {"ok": 0, "msg": "该微博不存在"}, None
            return 200, {"ok": 1, "data": {"ok": 1, "longTextContent": P.render_html(self.world, post, full=True),
                                           "reposts_count": post.reposts, "comments_count": post.n_comments,
                                           "attitudes_count": P.count_text(post.likes)}}, None
        if method == "GET" and path == "/comments/hotflow":
            return 200, self._hotflow(q), None
        if path == "/_sandbox/actions":
            with self._lock:
                return 200, list(self.actions), None
        if path == "/_sandbox/world":
            return 200, self.world.summary(), None
        if path.startswith("/2/"):
            return self._api(method, path, q, form, headers)
        return 404, {"ok": 0, "msg": f"no such endpoint {path}"}, None

    def detail_page(self, mid: str) -> tuple[int, str]:
        """A post as a person would open it (what review and worklist links point at)."""
        post = self.world.posts.get(mid)
        if post is None:
            return 404, "<!doctype html><meta charset=utf-8><title>不存在</title><p>该微博不存在</p>"
        user = self.world.users.get(post.uid)
        name = html.escape(user.name if user else "画像品牌号")
        rows = "".join(f"<li>{html.escape(self.world.users[c['uid']].name if c['uid'] in self.world.users else '画像品牌号')}: "
                       f"{html.escape(c['text'])}</li>" for c in self.world.comments(mid))
        text = html.escape(post.text + ("\n" + post.long_extra if post.long_extra else "")).replace("\n", "<br>")
        return 200, (f"<!doctype html><meta charset=utf-8><title>{name} 的微博</title>"
                     f"<h1>{name}</h1><p>{text}</p><p>{P.weibo_time(post.ts)} · 转发 {post.reposts} · "
                     f"评论 {post.n_comments} · 赞 {post.likes}</p><ul>{rows}</ul>")

    def _get_index(self, q: dict[str, list[str]]) -> dict[str, Any]:
        w = self.world
        cid = _one(q, "containerid")
        page = int(_one(q, "page", "1") or 1) if _one(q, "page", "1").isdigit() else 1
        since = _one(q, "since_id") or None
        if cid.startswith("100103") or cid.startswith("231522"):
            inner = parse_qs(cid[6:], keep_blank_values=True)
            kind, term = _one(inner, "type"), _one(inner, "q")
            if cid.startswith("100103") and kind == "98":
                bare = term.removesuffix("超话")
                cards = [{"card_type": 8, "title_sub": f"{name}超话", "desc1": f"{len(w.by_group[g])}帖子",
                          "scheme": f"https://m.weibo.cn/p/index?containerid=100808{g}&extparam={name}"}
                         for g, name in w.groups.items() if bare and (bare in name or name in bare)]
                return P.index_payload([{"card_type": 11, "card_group": cards}] if cards else [],
                                       {"containerid": cid, "page": None})
            if cid.startswith("100103") and kind == "3":
                uids, nxt = P.page_slice(w.tag_uids(term), page)
                cards = [{"card_type": 11, "card_group": [P.user_card(w.users[u]) for u in uids]}] if uids else []
                return P.index_payload(cards, {"containerid": cid, "page": nxt, "total": len(w.tag_uids(term))})
            mids = w.topic_mids(term) if cid.startswith("231522") else w.search_mids(term)
            chunk, nxt = P.page_slice(mids, page)
            cards = [P.post_card(w, w.posts[m]) for m in chunk]
            if cid.startswith("100103"):
                # Real search pages wrap posts in card_type 11 groups with card_type as a string.
                for c in cards:
                    c["card_type"] = "9"
                cards = [{"card_type": 11, "card_group": cards}] if cards else []
            elif cards and page == 1:
                cards.insert(0, {"card_type": 4, "desc": f"{term} 的讨论", "scheme": ""})
            return P.index_payload(cards, {"containerid": cid, "page": nxt, "total": len(mids)})
        if cid.startswith("100808"):
            # Real super-topic pages keep their cursor in data.pageInfo.since_id, a JSON string.
            hexid = cid[6:38]
            mids = w.by_group.get(hexid, [])
            chunk, nxt = P.since_slice(mids, P.supertopic_bound(since))
            cards = [P.post_card(w, w.posts[m]) for m in chunk]
            payload = P.index_payload(cards, {"containerid": cid})
            if cards:
                payload["data"]["pageInfo"] = P.supertopic_page_info(cid, mids, nxt)
            return payload
        if cid.startswith("100505"):
            user = w.users.get(cid[6:])
            if user is None:
                return {"ok": 0, "msg": "用户不存在"}
            return {"ok": 1, "data": {"userInfo": P.user_json(user, full=True),
                                      "tabsInfo": {"selectedTab": 1, "tabs": [{"id": 1, "tabKey": "weibo", "containerid": f"107603{user.uid}"}]}}}
        if cid.startswith("230283") and cid.endswith("_-_INFO"):
            user = w.users.get(cid[6:-7])
            if user is None:
                return {"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}}
            return P.info_payload(user)
        if cid.startswith("107603"):
            user = w.users.get(cid[6:])
            if user is None:
                return {"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}}
            chunk, nxt = P.since_slice(user.mids, since)
            cards = [P.post_card(w, w.posts[m]) for m in chunk]
            return P.index_payload(cards, {"containerid": cid, "since_id": nxt or ""})
        return {"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}}

    def _hotflow(self, q: dict[str, list[str]]) -> dict[str, Any]:
        mid = _one(q, "id") or _one(q, "mid")
        comments = list(self.world.comments(mid))
        if not comments:
            return {"ok": 0, "msg": "快来发表你的评论吧"}
        start = int(_one(q, "max_id", "0") or 0) if _one(q, "max_id", "0").isdigit() else 0
        # Replies (楼中楼) ride inside their thread's comments[], as on m.weibo.cn.
        tops = [c for c in comments if not c.get("root")]
        chunk = tops[start:start + COMMENT_PAGE]
        nxt = start + COMMENT_PAGE if start + COMMENT_PAGE < len(tops) else 0
        replies: dict[str, list[dict[str, Any]]] = {}
        for c in comments:
            if c.get("root"):
                replies.setdefault(c["root"], []).append(c)
        data = [P.hotflow_comment(self.world, c, replies.get(c["id"], [])) for c in chunk]
        return {"ok": 1, "data": {"data": data, "total_number": len(comments), "max_id": nxt, "max_id_type": 0}}

    # -- Open API v2 -------------------------------------------------------------------
    def _api(self, method: str, path: str, q: dict[str, list[str]], form: dict[str, list[str]],
             headers: dict[str, str]) -> tuple[int, Any, dict[str, str] | None]:
        params = form if method == "POST" else q
        supplied = _one(params, "access_token")
        if not supplied or (self.token is not None and supplied != self.token):
            return 401, {"error": "invalid_access_token", "error_code": 21332, "request": path}, None
        w = self.world
        if method == "GET" and path == "/2/account/get_uid.json":
            return 200, {"uid": int(ME_UID)}, None
        if method == "GET" and path == "/2/comments/to_me.json":
            since = int(_one(q, "since_id", "0") or 0) if _one(q, "since_id", "0").isdigit() else 0
            count = min(200, int(_one(q, "count", "50"))) if _one(q, "count", "50").isdigit() else 50
            page = max(1, int(_one(q, "page", "1"))) if _one(q, "page", "1").isdigit() else 1
            with w.lock:
                got = sorted((c for c in w.replies_to_us if int(c["id"]) > since), key=lambda c: -int(c["id"]))
                out = [P.api_comment(w, c) for c in got[(page - 1) * count: page * count]]
            return 200, {"comments": out, "total_number": len(got), "previous_cursor": 0, "next_cursor": 0}, None
        if method == "GET" and path == "/2/friendships/followers/ids.json":
            with w.lock:
                ids = [int(u) for u in w.followers_of_us] if _one(q, "uid", ME_UID) == ME_UID else []
            return 200, {"ids": ids, "next_cursor": 0, "previous_cursor": 0, "total_number": len(ids)}, None
        if method == "POST" and path in ("/2/comments/create.json", "/2/statuses/repost.json"):
            pid = _one(form, "id")
            post = w.posts.get(pid)
            if post is None:
                return 400, {"error": "target weibo does not exist!", "error_code": 20101, "request": path}, None
            text = _one(form, "comment") if path.endswith("create.json") else (_one(form, "status") or "转发微博")
            if not text.strip():
                return 400, {"error": "content is null!", "error_code": 20008, "request": path}, None
            if len(text) > 140:
                return 400, {"error": "text too long, please input text less than 140 characters!",
                             "error_code": 20012, "request": path}, None
            key = headers.get("X-Idempotency-Key") or headers.get("x-idempotency-key")
            if path.endswith("create.json"):
                obj, remote = self._comment(post, text)
                kind = "comment"
            else:
                obj, remote = self._repost(post, text)
                kind = "repost"
            with self._lock:
                self.actions.append({"kind": kind, "target": pid, "text": text, "remote_id": remote,
                                     "idempotency_key": key,
                                     "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            return 200, obj, None
        return 404, {"error": "not found", "error_code": 10014, "request": path}, None

    def _comment(self, post: SPost, text: str) -> tuple[dict[str, Any], str]:
        w = self.world
        with w.lock:
            said_before = any(c["text"] == text for c in w.our_comments)
            cid = w.next_our_id()
            now = time.time()
            ours = {"id": cid, "uid": ME_UID, "text": text, "ts": now, "likes": 0, "post": post.mid}
            w.comments(post.mid).append(ours)
            w.our_comments.append(ours)
            author = post.uid
            if author in w.users:
                self._respond(post, ours, comment_quality(post.text, text, said_before))
            return P.api_comment(w, ours), cid

    def _respond(self, post: SPost, ours: dict[str, Any], quality: str) -> None:
        """The author reads our comment: answers, likes it, follows us back or
        asks us to stop, likelier the more it speaks to their post."""
        w, author, text = self.world, post.uid, ours["text"]
        if quality == "repeated":
            return
        h = lambda what: stable_hash(w.seed, what, post.mid, text) % 100   # noqa: E731 - one roll per outcome
        rate = REPLY_RATE[quality] + (QUESTION_BONUS if quality == "answers" and re.search(r"[？?]", text) else 0)
        if h("reply") < rate:
            optout = h("optout") < OPT_OUT_RATE[quality]
            pool = OPT_OUTS if optout else REPLIES
            reply = {"id": str(int(ours["id"]) + 1), "uid": author, "text": pool[h("which") % len(pool)],
                     "ts": ours["ts"] + 1, "likes": 0, "post": post.mid, "reply_to": ours["id"]}
            w.replies_to_us.append(reply)
            w.comments(post.mid).append(reply)
        if h("like") < LIKE_RATE[quality]:
            ours["likes"] = 1
        if author not in w.followers_of_us and h("follow") < FOLLOW_RATE[quality]:
            w.followers_of_us.append(author)

    def _repost(self, post: SPost, text: str) -> tuple[dict[str, Any], str]:
        w = self.world
        with w.lock:
            mid = w.next_our_id()
            ours = SPost(mid=mid, uid=ME_UID, ts=time.time(), community=post.community, segments=[("text", text)],
                         topics=[], repost_of=post.mid, client="iPhone客户端", by_us=True)
            w.posts[mid] = ours
            post.reposts += 1
            return P.api_status(w, ours), mid


def start_sandbox(seed: int = 0, port: int = 0, faults: FaultConfig | None = None, n_users: int = DEFAULT_USERS,
                  host: str = "127.0.0.1", now: float | None = None, token: str | None = None,
                  require_session: bool = False) -> SandboxServer:
    """Build the world and serve it from a background thread on loopback.

    ``port=0`` picks a free port (see ``.base_url``). Use as a context manager
    or call ``.stop()``. Writes need an ``access_token``: with ``token=None``
    any non-empty one is accepted, otherwise exactly ``token``.
    """
    world = World(seed=seed, n_users=n_users, now=now)
    return SandboxServer(world, host=host, port=port, faults=faults, token=token,
                         require_session=require_session).start()
