"""Mastodon as a platform: reads by hashtag, search, list or local timeline; replies and boosts.

Why Mastodon: an open API with a documented bot culture. The adapter follows
it: it reads the ``X-RateLimit-*`` headers (300 requests per 5 minutes by
default) and stops before the instance has to refuse it, every write carries
an ``Idempotency-Key`` so a retried send cannot post twice, and a ``#nobot``
in a profile (bio or profile fields) is kept in the stored bio, where the
``users.nobot`` column picks it up for the planner and the sender.

Query kinds: ``topic`` and ``tag`` read the hashtag timeline (``tag`` has no
"users by tag" on Mastodon, so it lists the people posting under the tag),
``keyword`` uses ``/api/v2/search``, ``group`` takes ``local``, ``public``,
``remote`` or ``list:<id>``. Cursors are ``max_id`` values (an ``offset`` for
search).
"""

from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from bot.find.errors import BlockedError, HttpError, OutcomeUnknownError, PayloadError, SourceError
from bot.find.sources.base import Page, SendResult, Source, text_key
from bot.find.sources.rss import html_to_text
from config.times import UTC, parse_stored, to_stored
from storage.records import Post, User

log = logging.getLogger(__name__)

PLATFORM = "mastodon"
LIMIT = 40                 # the API's maximum page size for statuses
FOLLOWER_LIMIT = 80
MAX_FOLLOWER_PAGES = 50
MAX_NOTIFICATION_PAGES = 25  # replies to us read per outcomes run, at most (1,000 mentions)
_NOBOT = re.compile(r"#nobot\b", re.I)


# -- parsing (pure: payload -> records) ---------------------------------------------

def _stored_time(value: Any) -> str | None:
    """Mastodon times are ISO 8601 in UTC (``2026-11-22T09:41:03.000Z``):
    kept in the stored format; an unreadable one is unknown (None)."""
    when = parse_stored(value) if isinstance(value, str) else None
    return to_stored(when) if when else None


def _count(value: Any) -> int | None:
    """A count, or None when missing or impossible (SQLite integers are 64-bit)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
    return value if ok else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str | None:
    """A string field, or None when the payload put something else there."""
    return value if isinstance(value, str) and value else None


def _ident(value: Any, what: str) -> str:
    """Ids are strings in the API (numbers in some forks); anything else is malformed."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ValueError(f"{what} without a usable id")
    return str(value)


def parse_account(acc: Any) -> User:
    """An Account entity as a User. Statuses embed the full entity, so inline
    authors count as full profiles too (no extra request per author)."""
    if not isinstance(acc, dict):
        raise ValueError("account is not an object")
    uid = _ident(acc.get("id"), "account")
    bio = html_to_text(_s(acc.get("note")))
    fields = acc.get("fields") if isinstance(acc.get("fields"), list) else []
    field_text = " ".join(html_to_text(f"{_s(f.get('name')) or ''} {_s(f.get('value')) or ''}") for f in fields if isinstance(f, dict))
    if _NOBOT.search(field_text) and not _NOBOT.search(bio):
        # The opt-out may sit in a profile field; keep it where users.nobot looks.
        bio = (bio + "\n#nobot").strip()
    return User(
        platform=PLATFORM, uid=uid, name=_s(acc.get("display_name")) or _s(acc.get("username")),
        bio=bio or None, followers=_count(acc.get("followers_count")), following=_count(acc.get("following_count")),
        posts_count=_count(acc.get("statuses_count")), profile_url=_s(acc.get("url")),
        avatar_url=_s(acc.get("avatar")), raw=acc, full_profile=True,
        is_bot=acc.get("bot") if isinstance(acc.get("bot"), bool) else None,
        registered_at=_stored_time(acc.get("created_at")),
    )


def has_nobot(acc: dict[str, Any]) -> bool:
    """True when the account asks bots to leave it alone (#nobot in bio or fields)."""
    try:
        return bool(_NOBOT.search(parse_account(acc).bio or ""))
    except ValueError:
        return False


def parse_status(st: Any, group: str | None = None) -> list[Post]:
    """A Status as posts: itself, or for a boost the boost (repost_of) and the original."""
    if not isinstance(st, dict):
        raise ValueError(f"expected a status object, got {type(st).__name__}")
    pid = _ident(st.get("id"), "status")
    if not st.get("account"):
        raise ValueError("status without 'account'")
    author = parse_account(st["account"])
    reblog = st.get("reblog")
    if isinstance(reblog, dict) and reblog:
        original = parse_status(reblog, group=group)
        boost = Post(platform=PLATFORM, pid=pid, uid=author.uid, text="", created_at=_stored_time(st.get("created_at")),
                     repost_of=original[0].pid, group_id=group, url=_s(st.get("uri")), raw=st, author=author)
        return [boost, *original]
    text = html_to_text(_s(st.get("content")))
    spoiler = (_s(st.get("spoiler_text")) or "").strip()
    if spoiler:
        text = f"{spoiler}\n{text}".strip()
    tags = [t["name"] for t in _list(st.get("tags")) if isinstance(t, dict) and _s(t.get("name"))]
    mentions = [m["acct"] for m in _list(st.get("mentions")) if isinstance(m, dict) and _s(m.get("acct"))]
    parent = st.get("in_reply_to_id")
    parent = str(parent) if isinstance(parent, (str, int)) and not isinstance(parent, bool) and parent != "" else None
    created = _stored_time(st.get("created_at"))
    if created is None and st.get("created_at"):
        log.info("status %s: unreadable created_at %r", pid, st.get("created_at"))
    return [Post(
        platform=PLATFORM, pid=pid, uid=author.uid, text=text, created_at=created,
        topics=tags, mentions=mentions, reposts=_count(st.get("reblogs_count")),
        comments=_count(st.get("replies_count")), likes=_count(st.get("favourites_count")),
        kind="comment" if parent else "post", parent_pid=parent,
        group_id=group, url=_s(st.get("url")) or _s(st.get("uri")), raw=st, author=author,
        language=_s(st.get("language")),
    )]


def parse_statuses(items: Any, group: str | None = None) -> Page:
    """A list of statuses as a Page; malformed ones are logged and counted, not fatal."""
    if not isinstance(items, list):
        raise PayloadError(f"expected a list of statuses, got {type(items).__name__}")
    page = Page(raw=items)
    seen: set[str] = set()
    users: dict[str, User] = {}
    for st in items:
        try:
            posts = parse_status(st, group=group)
        except ValueError as exc:
            page.skipped += 1
            log.info("skipped a status: %s", exc)
            continue
        for p in posts:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            page.posts.append(p)
            if p.author is not None:
                users[p.author.uid] = p.author
    page.users = list(users.values())
    return page


def next_max_id(link_header: str | None, items: list[Any], limit: int = LIMIT) -> str | None:
    """The next page's max_id: from the Link header's rel="next", else the
    oldest id when the page was full. None at the end."""
    if link_header:
        for part in link_header.split(","):
            m = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", part)
            if m:
                values = parse_qs(urlsplit(m.group(1)).query).get("max_id")
                if values:
                    return values[0]
        return None
    if len(items) >= limit:
        ids = [str(i.get("id")) for i in items if isinstance(i, dict) and i.get("id")]
        if ids:
            return min(ids, key=_id_key)
    return None


# -- the adapter -------------------------------------------------------------------------

class MissingTokenError(SourceError):
    """Writes and outcome checks need an access token; nothing was sent."""

    kind = "no_token"


@dataclass
class RateWindow:
    """What the last X-RateLimit-* headers said about one window."""

    limit: int | None = None
    remaining: int | None = None
    reset: datetime | None = None


class MastodonSource(Source):
    """One Mastodon instance (``base_url``); the token (``token_env``/``token_file``)
    is needed for writes, search, lists and outcome checks, not for public reads.

    ``clock`` (an aware-datetime callable) is injectable so rate-limit waits
    are testable without waiting.
    """

    platform = PLATFORM
    send_mode = PLATFORM
    source_keys = frozenset({"visibility"})

    def __init__(self, settings: Any, http: Any, secrets: dict[str, str | None] | None = None,
                 clock: Any = None):
        super().__init__(settings, http, secrets)
        self.base = (settings.base_url or "").rstrip("/")
        self._clock = clock or (lambda: datetime.now(UTC))
        # Reads and writes have separate windows on Mastodon (300 requests per
        # 5 minutes; 300 statuses per 3 hours), so each keeps its own.
        self.rates: dict[str, RateWindow] = {"read": RateWindow(), "write": RateWindow()}
        self._me: dict[str, Any] | None = None

    # -- plumbing --------------------------------------------------------
    def _url(self, path: str) -> str:
        if not self.base:
            raise SourceError(f"source {self.settings.name!r}: base_url must be the Mastodon instance, e.g. https://mastodon.social")
        return self.base + path

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.secrets.get("token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if extra:
            headers.update(extra)
        return headers

    def _require_token(self) -> None:
        if not self.secrets.get("token"):
            raise MissingTokenError(f"source {self.settings.name!r}: writing needs an access token (token_env or token_file)")

    @property
    def rate_limit(self) -> int | None:
        return self.rates["read"].limit

    @property
    def rate_remaining(self) -> int | None:
        return self.rates["read"].remaining

    def _before_request(self, kind: str = "read") -> None:
        """Stop before the instance refuses us: when the window is spent, pause until it resets."""
        w = self.rates[kind]
        if w.remaining is not None and w.remaining <= 0 and w.reset is not None:
            wait = (w.reset - self._clock()).total_seconds()
            if wait > 0:
                raise BlockedError("rate_limited", f"{self.base}: {kind} rate limit spent ({w.limit} per window); "
                                   f"resets in {wait:.0f}s", retry_after=wait)
            w.remaining = None

    def _note_rate(self, resp, kind: str = "read") -> None:
        w = self.rates[kind]
        h = resp.headers
        try:
            if h.get("X-RateLimit-Limit"):
                w.limit = int(h["X-RateLimit-Limit"])
            if h.get("X-RateLimit-Remaining"):
                w.remaining = int(h["X-RateLimit-Remaining"])
        except ValueError:
            log.debug("unreadable rate limit headers")
        reset = h.get("X-RateLimit-Reset")
        if reset:
            when = parse_stored(reset)
            if when is None:
                log.debug("unreadable X-RateLimit-Reset %r", reset)
            else:
                w.reset = when

    def _retry_after(self, resp, kind: str = "read") -> float | None:
        ra = resp.headers.get("Retry-After")
        if ra:
            try:
                return float(ra)
            except ValueError:
                pass
        reset = self.rates[kind].reset
        if reset is not None:
            return max(0.0, (reset - self._clock()).total_seconds())
        return None

    def _check(self, resp, what: str) -> None:
        self._note_rate(resp)
        status = resp.status_code
        if status == 429:
            raise BlockedError("rate_limited", f"{what}: HTTP 429", retry_after=self._retry_after(resp))
        if status in (401, 403):
            raise BlockedError("unauthorized" if status == 401 else "forbidden", f"{what}: HTTP {status} {_error_text(resp)}")
        if status == 404:
            raise SourceError(f"{what}: not found (HTTP 404)")
        if status >= 400:
            raise SourceError(f"{what}: HTTP {status} {_error_text(resp)}")

    def _get(self, path: str, params: Any = None):
        self._before_request()
        resp = self.http.get(self._url(path), params=params, headers=self._headers())
        self._check(resp, path)
        try:
            return resp.json(), resp
        except (json.JSONDecodeError, ValueError) as exc:
            raise PayloadError(f"{path}: not JSON ({exc})") from None

    def _timeline(self, path: str, cursor: str | None, params: dict | None = None, group: str | None = None,
                  since_id: str | None = None) -> Page:
        q: dict[str, Any] = {"limit": LIMIT, **(params or {})}
        if cursor:
            q["max_id"] = cursor
        if since_id:
            q["since_id"] = since_id
        data, resp = self._get(path, q)
        page = parse_statuses(data, group=group)
        page.next_cursor = next_max_id(resp.headers.get("Link"), data) if data else None
        return page

    # -- reads -------------------------------------------------------------
    def tag_timeline(self, tag: str, cursor: str | None = None, since_id: str | None = None) -> Page:
        name = tag.strip().lstrip("#").strip()
        if not name:
            raise SourceError("an empty hashtag")
        return self._timeline(f"/api/v1/timelines/tag/{quote(name, safe='')}", cursor, since_id=since_id)

    def topic_posts(self, topic: str, cursor: str | None = None) -> Page:
        return self.tag_timeline(topic, cursor)

    def users_by_tag(self, tag: str, cursor: str | None = None) -> Page:
        # Mastodon has no directory by tag; the people posting under it are the closest.
        return self.tag_timeline(tag, cursor)

    def search_posts(self, keyword: str, cursor: str | None = None) -> Page:
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        params: dict[str, Any] = {"q": keyword, "type": "statuses", "limit": LIMIT, "resolve": "false"}
        if offset:
            params["offset"] = offset
        data, _ = self._get("/api/v2/search", params)
        if not isinstance(data, dict):
            raise PayloadError(f"/api/v2/search: expected an object, got {type(data).__name__}")
        statuses = data.get("statuses") or []
        page = parse_statuses(statuses)
        page.raw = data
        page.next_cursor = str(offset + len(statuses)) if len(statuses) >= LIMIT else None
        return page

    def group_posts(self, group: str, cursor: str | None = None) -> Page:
        g = group.strip()
        if g == "local":
            return self._timeline("/api/v1/timelines/public", cursor, {"local": "true"}, group=g)
        if g == "remote":
            return self._timeline("/api/v1/timelines/public", cursor, {"remote": "true"}, group=g)
        if g in ("public", "federated"):
            return self._timeline("/api/v1/timelines/public", cursor, group=g)
        m = re.fullmatch(r"(?:list:)?(\d+)", g)
        if m:
            return self._timeline(f"/api/v1/timelines/list/{m.group(1)}", cursor, group=g)
        raise SourceError(f"mastodon group {group!r}: use local, public, remote or list:<id>")

    def user_profile(self, uid: str) -> User:
        data, _ = self._get(f"/api/v1/accounts/{quote(uid, safe='')}")
        try:
            return parse_account(data)
        except ValueError as exc:
            raise PayloadError(f"account {uid}: {exc}") from None

    def user_posts(self, uid: str, cursor: str | None = None) -> Page:
        return self._timeline(f"/api/v1/accounts/{quote(uid, safe='')}/statuses", cursor)

    def post_comments(self, pid: str, cursor: str | None = None) -> Page:
        data, _ = self._get(f"/api/v1/statuses/{quote(pid, safe='')}/context")
        if not isinstance(data, dict):
            raise PayloadError(f"context of {pid}: expected an object")
        page = parse_statuses(data.get("descendants") or [])
        page.raw = data
        return page

    def account_by_acct(self, acct: str) -> User:
        data, _ = self._get("/api/v1/accounts/lookup", {"acct": acct.lstrip("@")})
        return parse_account(data)

    def me(self) -> dict[str, Any]:
        """The sending account (verify_credentials), fetched once."""
        if self._me is None:
            self._require_token()
            data, _ = self._get("/api/v1/accounts/verify_credentials")
            if not isinstance(data, dict) or not data.get("id"):
                raise PayloadError("verify_credentials: no account id")
            self._me = data
        return self._me

    def comments_to_me(self, since_id: str | None = None) -> list[Post]:
        """Replies to our statuses, newest first (mention notifications).

        As the interface asks: ``parent_pid`` is the post we had replied to,
        ``raw["reply_to_comment_id"]`` our status that was answered. Mentions
        that answer nothing of ours are not replies and are left out.
        """
        me = str(self.me()["id"])
        # since_id is a status id (the newest reply seen); notification ids are
        # another sequence, so the filter is applied to the statuses here, and
        # pages are read (newest first) until one reaches back to since_id.
        roots: dict[str, str | None] = {}
        out: list[Post] = []
        cursor: str | None = None
        for _ in range(MAX_NOTIFICATION_PAGES):
            params: list[tuple[str, Any]] = [("types[]", "mention"), ("limit", LIMIT)]
            if cursor:
                params.append(("max_id", cursor))
            data, resp = self._get("/api/v1/notifications", params)
            if not isinstance(data, list):
                raise PayloadError("notifications: expected a list")
            reached = False
            for n in data:
                st = n.get("status") if isinstance(n, dict) and n.get("type") == "mention" else None
                if not isinstance(st, dict):
                    continue
                if since_id and _id_key(str(st.get("id"))) <= _id_key(since_id):
                    reached = True
                    continue
                post = self._reply_to_us(st, me, roots)
                if post is not None:
                    out.append(post)
            cursor = next_max_id(resp.headers.get("Link"), data) if data else None
            if reached or not cursor:
                break
        return out

    def _reply_to_us(self, st: dict, me: str, roots: dict[str, str | None]) -> Post | None:
        """A mention that answers one of our statuses, as a reply to us (else None)."""
        if str(st.get("in_reply_to_account_id")) != me or not st.get("in_reply_to_id"):
            return None
        ours = str(st["in_reply_to_id"])
        if ours not in roots:
            try:
                mine, _ = self._get(f"/api/v1/statuses/{quote(ours, safe='')}")
                roots[ours] = str(mine["in_reply_to_id"]) if isinstance(mine, dict) and mine.get("in_reply_to_id") else None
            except SourceError as exc:
                if isinstance(exc, BlockedError):
                    raise
                log.info("replies to us: our status %s is gone (%s)", ours, exc)
                roots[ours] = None
        try:
            (post,) = parse_status(st)
        except ValueError as exc:
            log.warning("replies to us: skipped a malformed status: %s", exc)
            return None
        post.parent_pid = roots[ours] or ours
        post.raw = {**st, "reply_to_comment_id": ours}
        return post

    def follower_ids(self) -> set[str]:
        """Account ids following our account (Link-header paging, bounded)."""
        me = self.me()
        ids: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_FOLLOWER_PAGES):
            params: dict[str, Any] = {"limit": FOLLOWER_LIMIT}
            if cursor:
                params["max_id"] = cursor
            data, resp = self._get(f"/api/v1/accounts/{me['id']}/followers", params)
            if not isinstance(data, list) or not data:
                break
            ids.update(str(a["id"]) for a in data if isinstance(a, dict) and a.get("id"))
            cursor = next_max_id(resp.headers.get("Link"), data, limit=FOLLOWER_LIMIT)
            if not cursor:
                break
        return ids

    # -- writes (the sender calls these for approved items only) -----------------
    def _post(self, path: str, body: dict[str, Any] | None, idempotency_key: str):
        """POST once. Returns the response, or a SendResult when nothing was sent."""
        self._require_token()
        self._before_request("write")
        headers = self._headers({"Idempotency-Key": idempotency_key})
        try:
            resp = self.http.post(self._url(path), json=body, headers=headers)
        except HttpError as exc:
            import httpx

            if isinstance(exc.__cause__, httpx.ConnectError):
                return SendResult(ok=False, error=f"{path}: could not connect (nothing was sent)")
            raise OutcomeUnknownError(f"{path}: {exc.kind}; the status may or may not exist now "
                                      "(the Idempotency-Key makes a retry within 1 hour safe)") from exc
        self._note_rate(resp, "write")
        if resp.status_code == 429:
            raise BlockedError("rate_limited", f"{path}: HTTP 429", retry_after=self._retry_after(resp, "write"))
        if resp.status_code == 401:
            raise BlockedError("unauthorized", f"{path}: HTTP 401 {_error_text(resp)}")
        if resp.status_code >= 500:
            # The status may or may not exist now: an unknown outcome, for the
            # sender to reconcile (find_own_reply), never a plain failure.
            raise OutcomeUnknownError(f"{path}: HTTP {resp.status_code}; outcome unknown "
                                      "(the Idempotency-Key makes a retry within 1 hour safe)")
        return resp

    def reply(self, post_pid: str, text: str, idempotency_key: str) -> SendResult:
        """Reply to a status. The author's @handle is put in front when the
        approved text lacks it, as every Mastodon client does, so they are notified."""
        self._require_token()
        try:
            target, _ = self._get(f"/api/v1/statuses/{quote(post_pid, safe='')}")
        except SourceError as exc:
            if isinstance(exc, BlockedError):
                raise
            return SendResult(ok=False, error=f"could not read the post before replying ({exc}); nothing was sent")
        acct = ((target or {}).get("account") or {}).get("acct") if isinstance(target, dict) else None
        status = text
        if acct and f"@{acct}".lower() not in text.lower():
            status = f"@{acct} {text}"
        body = {"status": status, "in_reply_to_id": post_pid, "visibility": self.settings.visibility}
        resp = self._post("/api/v1/statuses", body, idempotency_key)
        return resp if isinstance(resp, SendResult) else _send_result(resp)

    def repost(self, post_pid: str, text: str, idempotency_key: str) -> SendResult:
        """Boost a status. Boosts carry no text of their own; any text is not sent."""
        if text:
            log.info("boost of %s: Mastodon boosts carry no text; the drafted text was not sent", post_pid)
        resp = self._post(f"/api/v1/statuses/{quote(post_pid, safe='')}/reblog", {"visibility": "public"}, idempotency_key)
        if isinstance(resp, SendResult):
            return resp
        result = _send_result(resp)
        if result.ok and isinstance(result.raw, dict) and result.raw.get("reblog"):
            result.remote_id = str(result.raw.get("id"))
        return result

    def find_own_reply(self, post_pid: str, text: str) -> str | None:
        """Our reply to the post whose text contains the sent text, if it exists (reconciliation)."""
        me = self.me()
        data, _ = self._get(f"/api/v1/statuses/{quote(post_pid, safe='')}/context")
        # As written (the server escaped <, > and &), as if its brackets were a tag, or with entities decoded:
        # "3 < 5 > 2" or "&lt;" is found however it was rendered, so it is never sent twice.
        wanted = {k for k in (text_key(text), text_key(html_to_text(text)), text_key(html.unescape(text or ""))) if k}
        for st in (data or {}).get("descendants") or []:
            if not isinstance(st, dict):
                continue
            if str((st.get("account") or {}).get("id")) != str(me["id"]) or str(st.get("in_reply_to_id")) != str(post_pid):
                continue
            shown = text_key(html_to_text(st.get("content")))
            if any(w in shown for w in wanted):
                return str(st["id"])
        return None

    def find_own_repost(self, post_pid: str) -> bool:
        """Whether our account has boosted the status (the ``reblogged`` flag needs a token)."""
        self._require_token()
        data, _ = self._get(f"/api/v1/statuses/{quote(post_pid, safe='')}")
        return bool(isinstance(data, dict) and data.get("reblogged"))


def _id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings ordered by value (snowflakes); compare them so."""
    return (len(value), value)


def _error_text(resp) -> str:
    try:
        data = resp.json()
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def _send_result(resp) -> SendResult:
    try:
        data = resp.json()
    except ValueError:
        data = None
    if 200 <= resp.status_code < 300 and isinstance(data, dict) and data.get("id"):
        return SendResult(ok=True, remote_id=str(data["id"]), raw=data)
    error = (data or {}).get("error") if isinstance(data, dict) else None
    return SendResult(ok=False, error=f"HTTP {resp.status_code}: {error or 'unexpected answer'}", raw=data)


SOURCE_CLASS = MastodonSource
