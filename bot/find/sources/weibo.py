"""The Weibo adapter: mobile-web reads (``m.weibo.cn`` shapes) and Open API v2 writes.

Why the mobile-web API: it is what a logged-in phone browser sees, returns
JSON, and pages by ``page=`` or ``since_id``. The base URL is configurable so
the same code runs against the local sandbox, which speaks the same shapes.

Every response is classified before it is parsed: blocking signals (418,
432, 403, 429, captcha JSON, ``ok:0`` with a complaint, a redirect to a
login/visitor page) raise ``BlockedError`` with a named ``kind`` so the crawl
log says exactly what happened and the crawler can back off and pause.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from config import SourceSettings
from bot.find.http import parse_retry_after
from bot.find.errors import (BlockedError, HttpError, OutcomeUnknownError, PayloadError, SessionExpiredError, SourceError,
                             UnsupportedError)
from bot.find.sources.base import Page, SendResult, Source
from bot.find.sources.weibo_parse import (CHINA, ItemError, card_kind, clean_text, is_long_text, parse_comment,
                                     parse_info_cards, parse_mblog, parse_thread, parse_user, rendering_keys,
                                     text_key, walk_cards)
from storage.records import Post, User

if TYPE_CHECKING:        # httpx is imported where it is needed: settings load without it
    import httpx

log = logging.getLogger(__name__)

PLATFORM = "weibo"
DEFAULT_BASE_URL = "https://m.weibo.cn"
DEFAULT_API_BASE_URL = "https://api.weibo.com"

# ok:0 messages that only mean "nothing (more) here".
_END_MESSAGES = ("还没有内容", "没有更多", "暂无", "no more", "没有找到", "快来发表")
_LOGIN_HINTS = ("passport", "login", "visitor", "signin", "sso")
_HEX32 = re.compile(r"^(?:100808)?([0-9a-fA-F]{32})(?:_-_\w*)?$")


LOGIN_HINT = "session expired: run `huaxiang login weibo`"
DEFAULT_VISITOR_BASE = "https://visitor.passport.weibo.cn"
DEFAULT_SIGNIN_URL = "https://passport.weibo.com/sso/signin?entry=wapsso&source=wapssowb&url=https%3A%2F%2Fm.weibo.cn%2F"
_JSONP = re.compile(r"\((\{.*\})\)\s*;?\s*$", re.S)


class MissingTokenError(SourceError):
    """Writes and outcome checks need an API access token for this source."""

    kind = "no_token"


class WeiboSource(Source):
    platform = PLATFORM
    send_mode = "weibo-api"
    send_token = "an OAuth2 access token"
    source_keys = frozenset({"api_base_url", "profile_details"})
    signin = PLATFORM
    default = True
    default_api_base = DEFAULT_API_BASE_URL
    post_url: str | None = "https://m.weibo.cn/status/{pid}"

    @classmethod
    def post_link(cls, pid: str, sources: list[SourceSettings]) -> str | None:
        return f"https://m.weibo.cn/detail/{pid}"

    @classmethod
    def profile_link(cls, uid: str) -> str | None:
        return f"https://weibo.com/u/{uid}"

    def __init__(self, settings: Any, http: Any, secrets: dict[str, str | None] | None = None,
                 now: Callable[[], datetime] | None = None):
        super().__init__(settings, http, secrets)
        self.base = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_base = (settings.api_base_url or self._default_api_base()).rstrip("/")
        self._now = now or (lambda: datetime.now(CHINA))
        self._own_uid: str | None = None
        self._groups: dict[str, str] = {}
        self._signed_in = bool((secrets or {}).get("cookie"))
        self._visitor_tried = False

    def _default_api_base(self) -> str:
        return self.default_api_base

    # -- transport and classification -----------------------------------
    def _fault(self, kind: str) -> None:
        stats = getattr(self.http, "stats", None)
        if stats is not None:
            stats.record_fault(kind)

    def _check(self, resp: httpx.Response, what: str) -> dict[str, Any]:
        """Raise the named signal for a refusal; return the JSON object otherwise."""
        status = resp.status_code
        if 300 <= status < 400:
            location = resp.headers.get("Location", "")
            kind = "login_redirect" if any(h in location.lower() for h in _LOGIN_HINTS) else "redirect"
            self._fault(kind)
            raise BlockedError(kind, f"{what}: HTTP {status} redirect to {location.split('?')[0] or '(nowhere)'}")
        if status in (418, 432, 403, 429):
            kind = f"http_{status}"
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise BlockedError(kind, f"{what}: HTTP {status}", retry_after=retry_after)
        if status >= 500:
            err = SourceError(f"{what}: HTTP {status} after retries")
            err.kind = f"http_{status}"
            raise err
        if status >= 400:
            err = SourceError(f"{what}: HTTP {status}")
            err.kind = f"http_{status}"
            raise err
        try:
            payload = json.loads(resp.content)
        except (ValueError, UnicodeDecodeError):
            head = resp.content[:200].decode("utf-8", "replace")
            if "Sina Visitor System" in head or "passport" in head.lower():
                self._fault("visitor_page")
                raise BlockedError("visitor_page", f"{what}: got the visitor/login page instead of JSON") from None
            self._fault("bad_json")
            raise PayloadError(f"{what}: response is not valid JSON ({len(resp.content)} bytes, truncated?)") from None
        if not isinstance(payload, dict):
            self._fault("bad_shape")
            raise PayloadError(f"{what}: expected a JSON object, got {type(payload).__name__}")
        ok = payload.get("ok")
        url = str(payload.get("url") or "")
        if ok == -100 and "captcha" not in url.lower():
            # "ok":-100 pointing at a sign-in page: the session is gone (RSSHub renews its cookies on it).
            if self._signed_in:
                self._fault("session_expired")
                raise SessionExpiredError(f"{what}: {LOGIN_HINT}")
            self._fault("login_required")
            raise BlockedError("login_required", f"{what}: the platform wants a signed-in session ({url.split('?')[0]})")
        if ok == -100 or "captcha" in url.lower():
            self._fault("captcha")
            raise BlockedError("captcha", f"{what}: platform asks for a captcha ({url.split('?')[0]})")
        if ok == 0:
            msg = str(payload.get("msg") or "")
            if any(m in msg for m in _END_MESSAGES) or _empty_cards(payload):
                return payload
            self._fault("ok_0")
            raise BlockedError("ok_0", f"{what}: refused with ok=0 ({msg or 'no message'})")
        if ok not in (1, None) and "data" not in payload:
            self._fault("bad_shape")
            raise PayloadError(f"{what}: unexpected ok={ok!r}")
        return payload

    def _get(self, path: str, params: dict[str, Any], what: str, base: str | None = None) -> dict[str, Any]:
        # What the mobile web app itself sends; without them m.weibo.cn answers 432 sooner.
        headers = {"Referer": self.base + "/", "X-Requested-With": "XMLHttpRequest", "MWeibo-Pwa": "1"}
        url = (base or self.base) + path
        resp = self.http.get(url, params=params, headers=headers)
        if _sent_to_signin(resp):
            if self._signed_in:
                self._fault("session_expired")
                raise SessionExpiredError(f"{what}: {LOGIN_HINT}")
            if not self._visitor_tried and self.visitor_cookie():
                resp = self.http.get(url, params=params, headers=headers)
        return self._check(resp, what)

    # -- sessions -------------------------------------------------------------
    def signin_url(self) -> str:
        """Where a person signs in (``huaxiang login weibo`` opens it)."""
        if self.base == DEFAULT_BASE_URL:
            return DEFAULT_SIGNIN_URL
        return f"{self.base}/signin?url={self.base}/"

    def session_uid(self) -> str | None:
        """The signed-in user's id per ``/api/config`` (None when the cookie is not a session)."""
        payload = self._get("/api/config", {}, "session check")
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        if not data.get("login"):
            return None
        uid = data.get("uid")
        return str(uid) if uid not in (None, "") else ""

    def visitor_cookie(self) -> bool:
        """Fetch Weibo's visitor cookie the way the mobile site does when it sends
        an anonymous visitor away: POST ``/visitor/genvisitor2``, keep SUB/SUBP.

        Tried once per source object; False when it did not work (the caller
        then reports the refusal it already has).
        """
        self._visitor_tried = True
        vbase = DEFAULT_VISITOR_BASE if self.base == DEFAULT_BASE_URL else self.base
        form = {"cb": "visitor_gray_callback", "tid": "", "from": "weibo", "return_url": self.base + "/"}
        try:
            resp = self.http.post(vbase + "/visitor/genvisitor2", data=form,
                                  headers={"Referer": vbase + "/visitor/visitor?entry=sinawap&a=enter"})
        except SourceError as exc:
            log.info("visitor cookie: %s", exc)
            return False
        m = _JSONP.search(resp.text) if resp.status_code == 200 else None
        try:
            data = json.loads(m.group(1)).get("data") if m else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or not data.get("sub"):
            log.info("visitor cookie: no sub in the answer (HTTP %s)", resp.status_code)
            return False
        pairs = {"SUB": str(data["sub"])}
        if data.get("subp"):
            pairs["SUBP"] = str(data["subp"])
        self.http.set_cookies(pairs, self.base)
        log.info("visitor cookie obtained for %s", self.base)
        return True

    # -- listing helpers ---------------------------------------------------
    def _index(self, containerid: str, cursor: str | None, what: str, extra: dict[str, Any] | None = None,
               group_id: str | None = None, paging: str = "page") -> Page:
        params: dict[str, Any] = {"containerid": containerid, **(extra or {})}
        page_no = 1
        if cursor:
            kind, _, value = cursor.partition(":")
            if kind == "p" and value.isascii() and value.isdigit():
                page_no = int(value)
            elif kind == "s" and value:
                params["since_id"] = value
            else:
                raise PayloadError(f"{what}: cursor {cursor!r} is not one of ours")
        if paging == "page" and page_no > 1:
            params["page"] = page_no
        payload = self._get("/api/container/getIndex", params, what)
        data = payload.get("data")
        if payload.get("ok") == 0 and not isinstance(data, dict):
            return Page(raw=payload)
        if not isinstance(data, dict):
            self._fault("bad_shape")
            raise PayloadError(f"{what}: 'data' is missing or not an object")
        try:
            cards = walk_cards(data.get("cards", []))
        except ItemError as exc:
            self._fault("bad_shape")
            raise PayloadError(f"{what}: {exc}") from None
        page = Page(raw=payload)
        now = self._now()
        seen: set[str] = set()
        for card in cards:
            kind = card_kind(card)
            try:
                if kind == "post":
                    for post in parse_mblog(card.get("mblog"), self.platform, now, group_id, self.post_url):
                        if post.pid in seen:
                            continue
                        seen.add(post.pid)
                        page.posts.append(post)
                elif kind == "user":
                    page.users.append(parse_user(card.get("user"), self.platform, card))
                elif kind == "invalid":
                    raise ItemError("card is not an object")
            except ItemError as exc:
                page.skipped += 1
                log.warning("%s: skipped a malformed card: %s", what, exc)
        if page.skipped:
            self._fault("bad_item")
        if not cards or payload.get("ok") == 0:
            return page
        info = data.get("cardlistInfo") if isinstance(data.get("cardlistInfo"), dict) else {}
        if paging == "since_id":
            since = next_since_id(data)
            page.next_cursor = f"s:{since}" if since else None
        else:
            nxt = info.get("page")
            if isinstance(nxt, (int, str)) and str(nxt).isascii() and str(nxt).isdigit() and int(nxt) > page_no:
                page.next_cursor = f"p:{int(nxt)}"
            elif nxt is None and "page" not in info:
                page.next_cursor = f"p:{page_no + 1}"
        return page

    # -- reads -------------------------------------------------------------
    def search_posts(self, keyword: str, cursor: str | None = None) -> Page:
        # type=61 is the real-time (newest first) search, which incremental stops rely on.
        return self._index(f"100103type=61&q={keyword}", cursor, f"search {keyword!r}",
                           extra={"page_type": "searchall"})

    def topic_posts(self, topic: str, cursor: str | None = None) -> Page:
        name = topic.strip().strip("#")
        return self._index(f"231522type=1&t=10&q=#{name}#", cursor, f"topic #{name}#",
                           extra={"page_type": "searchall"})

    def group_posts(self, group: str, cursor: str | None = None) -> Page:
        hexid = self.resolve_group(group)
        return self._index(f"100808{hexid}_-_sort_time", cursor, f"super-topic {hexid}", group_id=hexid,
                           paging="since_id")

    def resolve_group(self, group: str) -> str:
        """A super-topic's 32-hex id from config: the id itself, a ``100808...``
        containerid, or its name (健身超话), looked up once via super-topic search."""
        m = _HEX32.match((group or "").strip())
        if m:
            return m.group(1).lower()
        cached = self._groups.get(group)
        if cached:
            return cached
        name = group.strip()
        what = f"super-topic search {name!r}"
        payload = self._get("/api/container/getIndex",
                            {"containerid": f"100103type=98&q={name}", "page_type": "searchall"}, what)
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        try:
            cards = walk_cards(data.get("cards", []))
        except ItemError:
            cards = []
        bare = name.removesuffix("超话")
        fallback = None
        for card in cards:
            blob = " ".join(str(card.get(k) or "") for k in ("scheme", "containerid", "itemid"))
            hit = re.search(r"100808([0-9a-fA-F]{32})", blob)
            if not hit:
                continue
            title = str(card.get("title_sub") or card.get("title") or "")
            if title.removesuffix("超话") == bare:
                self._groups[group] = hit.group(1).lower()
                return self._groups[group]
            fallback = fallback or hit.group(1).lower()
        if fallback is None:
            raise UnsupportedError(f"{what}: no super-topic found; put its 32-hex id in the query's value")
        self._groups[group] = fallback
        return fallback

    def users_by_tag(self, tag: str, cursor: str | None = None) -> Page:
        return self._index(f"100103type=3&q={tag}", cursor, f"users tagged {tag!r}",
                           extra={"page_type": "searchall"})

    def user_profile(self, uid: str) -> User:
        """The profile, completed by its "basic information" page (``230283<uid>_-_INFO``).

        A failed details page fails the profile (the crawler fetches both again):
        a profile stored without them would keep a gap a clean run does not have.
        An empty page ("这里还没有内容") simply adds nothing.
        """
        user = self._profile(uid)
        if not getattr(self.settings, "profile_details", True):
            return user
        details = self._profile_info(uid)
        for key, value in details.items():
            if value and getattr(user, key, None) in (None, ""):
                setattr(user, key, value)
        if details and isinstance(user.raw, dict):
            user.raw = {**user.raw, "_info": details}
        return user

    def _profile_info(self, uid: str) -> dict[str, str]:
        params = {"type": "uid", "value": uid, "containerid": f"230283{uid}_-_INFO"}
        payload = self._get("/api/container/getIndex", params, f"profile details {uid}")
        data = payload.get("data")
        if not isinstance(data, dict):
            return {}
        try:
            return parse_info_cards(walk_cards(data.get("cards", [])))
        except ItemError:
            self._fault("bad_shape")
            return {}

    def _profile(self, uid: str) -> User:
        what = f"profile {uid}"
        payload = self._get("/api/container/getIndex",
                            {"type": "uid", "value": uid, "containerid": f"100505{uid}"}, what)
        data = payload.get("data")
        info = data.get("userInfo") if isinstance(data, dict) else None
        if not isinstance(info, dict):
            self._fault("bad_shape")
            raise PayloadError(f"{what}: no data.userInfo")
        try:
            return parse_user(info, self.platform, full_profile=True)
        except ItemError as exc:
            self._fault("bad_item")
            raise PayloadError(f"{what}: {exc}") from None

    def user_posts(self, uid: str, cursor: str | None = None) -> Page:
        return self._index(f"107603{uid}", cursor, f"timeline {uid}",
                           extra={"type": "uid", "value": uid}, paging="since_id")

    def post_comments(self, pid: str, cursor: str | None = None) -> Page:
        what = f"comments on {pid}"
        params: dict[str, Any] = {"id": pid, "mid": pid, "max_id_type": 0}
        if cursor:
            kind, _, rest = cursor.partition(":")
            max_id, _, max_type = rest.partition(":")
            if kind != "m" or not max_id:
                raise PayloadError(f"{what}: cursor {cursor!r} is not one of ours")
            params["max_id"] = max_id
            params["max_id_type"] = max_type or 0
        payload = self._get("/comments/hotflow", params, what)
        data = payload.get("data")
        page = Page(raw=payload)
        if payload.get("ok") == 0 or data is None:
            return page
        if not isinstance(data, dict) or not isinstance(data.get("data", []), list):
            self._fault("bad_shape")
            raise PayloadError(f"{what}: 'data.data' is not a list")
        now = self._now()
        for c in data.get("data") or []:
            try:
                thread, bad = parse_thread(c, self.platform, pid, now)
            except ItemError as exc:
                page.skipped += 1
                log.warning("%s: skipped a malformed comment: %s", what, exc)
                continue
            page.posts.extend(thread)
            if bad:
                page.skipped += bad
                log.warning("%s: skipped %d malformed replies", what, bad)
        max_id = data.get("max_id")
        if max_id not in (None, 0, "0", "") and page.posts:
            page.next_cursor = f"m:{max_id}:{data.get('max_id_type', 0)}"
        return page

    def expand_posts(self, posts: list[Post]) -> list[Post]:
        """Fetch the full text of truncated long posts (``isLongText``).

        Why raise when one fails: a post is stored once and later listings
        keep its stored text, so a truncated text accepted now stays
        truncated for good. The others are expanded first; a retry (the
        crawler's) skips posts whose text is already not the listing's.
        """
        failed: list[str] = []
        for post in posts:
            if post.kind != "post" or not is_long_text(post.raw):
                continue
            if post.text != clean_text(post.raw.get("text")):
                continue                    # expanded by an earlier try
            what = f"long text of {post.pid}"
            try:
                payload = self._get("/statuses/extend", {"id": post.pid}, what)
            except BlockedError:
                raise
            except SourceError as exc:
                failed.append(f"{post.pid} ({exc})")
                continue
            data = payload.get("data")
            content = data.get("longTextContent") if isinstance(data, dict) else None
            if isinstance(content, str) and content:
                from nlp.clean import extract_mentions, extract_topics

                post.text = clean_text(content)
                post.topics = extract_topics(post.text)
                post.mentions = extract_mentions(post.text)
            elif payload.get("ok") != 0:    # ok=0 "no more": nothing beyond the listing's text
                self._fault("bad_shape")
                failed.append(f"{post.pid} (no data.longTextContent)")
        if failed:
            raise PayloadError(f"long text of {len(failed)} post(s) not fetched: {'; '.join(failed[:3])}")
        return posts

    # -- writes (Open API v2; only the sender calls these) -------------------
    def _token(self) -> str:
        token = self.secrets.get("token")
        if not token:
            raise MissingTokenError(self.secrets.get("token_error") or
                                    f"source {self.settings.name!r} has no API access token (set token_env or token_file)")
        return token

    def _write_headers(self, idempotency_key: str) -> dict[str, str] | None:
        return None

    def _write(self, path: str, form: dict[str, Any], what: str, idempotency_key: str) -> SendResult:
        form = {**form, "access_token": self._token()}
        try:
            resp = self.http.post(self.api_base + path, data=form, headers=self._write_headers(idempotency_key))
        except HttpError as exc:
            import httpx

            if isinstance(exc.__cause__, httpx.ConnectError):
                return SendResult(ok=False, error=f"{what}: could not connect (nothing was sent)")
            raise OutcomeUnknownError(f"{what}: {exc.kind}; the platform may or may not have applied it") from exc
        status = resp.status_code
        if status in (418, 432) or 300 <= status < 400:
            self._check(resp, what)       # raises the named BlockedError
        if status >= 500:
            raise OutcomeUnknownError(f"{what}: HTTP {status}; the platform may or may not have applied it")
        try:
            body = resp.json()
        except ValueError:
            if status >= 400:
                return SendResult(ok=False, error=f"{what}: HTTP {status}")
            raise OutcomeUnknownError(f"{what}: HTTP {status} with an unreadable body") from None
        if status >= 400 or not isinstance(body, dict) or "error_code" in body or "error" in body:
            err = body.get("error") if isinstance(body, dict) else None
            code = body.get("error_code") if isinstance(body, dict) else None
            return SendResult(ok=False, error=f"{what}: HTTP {status} {code or ''} {err or ''}".strip(), raw=body)
        remote = body.get("idstr") or body.get("id")
        return SendResult(ok=True, remote_id=str(remote) if remote is not None else None, raw=body)

    def reply(self, post_pid: str, text: str, idempotency_key: str) -> SendResult:
        return self._write("/2/comments/create.json", {"id": post_pid, "comment": text},
                           f"comment on {post_pid}", idempotency_key)

    def repost(self, post_pid: str, text: str, idempotency_key: str) -> SendResult:
        return self._write("/2/statuses/repost.json", {"id": post_pid, "status": text},
                           f"repost of {post_pid}", idempotency_key)

    def _api_get(self, path: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        resp = self.http.get(self.api_base + path, params={**params, "access_token": self._token()})
        if resp.status_code == 401:
            raise MissingTokenError(f"{what}: the API token was refused (HTTP 401)")
        return self._check(resp, what)

    def own_uid(self) -> str | None:
        """Our account's user id (from the token), cached."""
        if self._own_uid is None:
            body = self._api_get("/2/account/get_uid.json", {}, "own uid")
            uid = body.get("uid")
            self._own_uid = str(uid) if uid is not None else None
        return self._own_uid

    def find_own_reply(self, post_pid: str, text: str, max_pages: int = 5) -> str | None:
        """Our comment with exactly this text on the post, if it exists (reconciliation)."""
        try:
            me = self.own_uid()
        except (MissingTokenError, PayloadError):
            me = None
        wanted = rendering_keys(text)
        cursor = None
        for _ in range(max_pages):
            page = self.post_comments(post_pid, cursor)
            for c in page.posts:
                if text_key(c.text) in wanted and (me is None or c.uid == me):
                    return c.pid
            cursor = page.next_cursor
            if not cursor:
                break
        return None

    def comments_to_me(self, since_id: str | None = None, max_pages: int = 100) -> list[Post]:
        """Every reply to us newer than ``since_id``, page by page (50 a page)
        until the cursor is reached: one page per run would lose replies on a
        busy day."""
        out: list[Post] = []
        for page in range(1, max_pages + 1):
            params: dict[str, Any] = {"count": TO_ME_PAGE, "page": page}
            if since_id:
                params["since_id"] = since_id
            body = self._api_get("/2/comments/to_me.json", params, "replies to us")
            comments = body.get("comments")
            if not isinstance(comments, list):
                raise PayloadError("replies to us: 'comments' is not a list")
            out += self._to_me_posts(comments)
            if len(comments) < TO_ME_PAGE or (since_id and any(_le(c, since_id) for c in comments)):
                break
        seen: set[str] = set()
        return [p for p in out if not (p.pid in seen or seen.add(p.pid)) and not (since_id and _id_le(p.pid, since_id))]

    def _to_me_posts(self, comments: list) -> list[Post]:
        out: list[Post] = []
        now = self._now()
        for c in comments:
            try:
                if not isinstance(c, dict):
                    raise ItemError("comment is not an object")
                status = c.get("status") if isinstance(c.get("status"), dict) else {}
                parent = str(status.get("idstr") or status.get("id") or "") or None
                post = parse_comment(c, self.platform, parent or "", now)
                post.parent_pid = parent
                reply_to = c.get("reply_comment") if isinstance(c.get("reply_comment"), dict) else {}
                rid = reply_to.get("idstr") or reply_to.get("id")
                post.raw = {**c, "reply_to_comment_id": str(rid) if rid is not None else None}
                out.append(post)
            except ItemError as exc:
                log.warning("replies to us: skipped a malformed comment: %s", exc)
        return out

    def follower_ids(self) -> set[str]:
        me = self.own_uid()
        ids: set[str] = set()
        cursor: Any = 0
        for _ in range(100):
            body = self._api_get("/2/friendships/followers/ids.json",
                                 {"uid": me, "count": 5000, "cursor": cursor}, "followers")
            got = body.get("ids")
            if not isinstance(got, list):
                raise PayloadError("followers: 'ids' is not a list")
            ids.update(str(i) for i in got)
            cursor = body.get("next_cursor")
            if not cursor or not got:
                break
        return ids


TO_ME_PAGE = 50


def _id_le(a: str, b: str) -> bool:
    try:
        return int(a) <= int(b)
    except ValueError:
        return a <= b


def _le(c: Any, since_id: str) -> bool:
    """A raw comment at or before the cursor (the API may ignore since_id)."""
    cid = c.get("idstr") or c.get("id") if isinstance(c, dict) else None
    return cid is not None and _id_le(str(cid), since_id)


def group_hex(group: str) -> str:
    """A super-topic id from config: the 32-hex id, or a ``100808<hex>...`` containerid."""
    m = _HEX32.match((group or "").strip())
    if not m:
        raise PayloadError(f"group {group!r} is not a super-topic id (32 hex digits, optionally prefixed 100808)")
    return m.group(1).lower()


def _sent_to_signin(resp: httpx.Response) -> bool:
    """Did the platform send us to its visitor or sign-in page instead of answering?"""
    if 300 <= resp.status_code < 400:
        location = resp.headers.get("Location", "").lower()
        return any(h in location for h in _LOGIN_HINTS)
    if resp.status_code != 200:
        return False
    if resp.content[:1] not in (b"{", b"["):
        return b"Sina Visitor System" in resp.content[:400]
    if len(resp.content) < 2048 and b"-100" in resp.content:
        try:
            body = json.loads(resp.content)
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("ok") == -100 and "captcha" not in str(body.get("url", "")).lower()
    return False


def next_since_id(data: dict[str, Any]) -> str | None:
    """The next-page cursor of a since_id feed, wherever this response keeps it.

    Timelines put it in ``cardlistInfo.since_id`` (a number); super-topic pages
    put it in ``pageInfo.since_id``, a JSON string such as
    ``{"page":2,"nextscore":...,"msgid":...}`` (sometimes an object). It is
    sent back exactly as received, so objects are serialised compactly.
    """
    for key in ("pageInfo", "cardlistInfo"):
        info = data.get(key)
        if not isinstance(info, dict):
            continue
        since = info.get("since_id")
        if isinstance(since, dict):
            since = json.dumps(since, ensure_ascii=False, separators=(",", ":")) if since else None
        if isinstance(since, bool) or since in (None, "", 0, "0"):
            continue
        if isinstance(since, (int, str)):
            return str(since)
    return None


def _empty_cards(payload: dict[str, Any]) -> bool:
    data = payload.get("data")
    if isinstance(data, dict):
        cards = data.get("cards", data.get("data"))
        return cards in (None, [])
    return False


SOURCE_CLASS = WeiboSource
