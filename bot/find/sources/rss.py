"""RSS 2.0 / Atom feeds, including RSSHub routes, as a platform.

Why feeds: many Chinese platforms (Douban groups, Tieba forums, Zhihu topics,
Weibo keywords and super-topics) have no API but have RSSHub routes. A query's
``value`` is either a full feed URL or a route such as ``/douban/group/:id``
that is joined to the source's ``base_url`` (your own RSSHub instance).

Polling is cheap: the adapter sends ``If-None-Match`` / ``If-Modified-Since``
from the validators it was given (``validators``, loaded by the crawler from
``storage.platforms.load_feed_state``) and a 304 becomes an empty page.
Feeds have no pages, so every read returns ``next_cursor=None``.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

from bot.find.http import parse_retry_after
from bot.find.errors import BlockedError, PayloadError, SourceError, UnsupportedError
from bot.find.sources.base import Page, Source
from nlp.clean import extract_mentions, extract_topics
from storage.records import Post, User

log = logging.getLogger(__name__)

PLATFORM = "rss"
MAX_REDIRECTS = 3
_BLOCK_TAGS = {"p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre"}
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(html: Any) -> str:
    """Plain text from an HTML fragment: tags gone, line structure kept.

    Paragraphs and ``<br>`` become line breaks; images become their alt text
    (Weibo emoticons are ``<img alt="[哈哈]">``); Mastodon's hidden URL parts
    (``span.invisible``) are dropped; entities are decoded. Script and style
    contents never reach the text.
    """
    if not html or not isinstance(html, str):
        return ""
    if "<" not in html and "&" not in html:
        return _tidy(html)
    from bs4 import BeautifulSoup   # here, not at the top: loading settings checks platform names, not feeds

    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(["script", "style", "template"]):
        tag.decompose()
    for tag in soup.select("span.invisible"):
        tag.decompose()
    for img in soup.find_all("img"):
        alt = img.get("alt") or ""
        img.replace_with(alt if re.fullmatch(r"\[[^\]]{1,12}\]", alt) else "")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    return _tidy(soup.get_text())


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()


def _struct_to_iso(value: Any) -> str | None:
    """feedparser's *_parsed values are UTC struct_time; None when the date was unreadable."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc).isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a feedparser structure (drops the parsed time tuples)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _site(url: str | None) -> str:
    host = urlsplit(url or "").netloc.lower()
    return host[4:] if host.startswith("www.") else host


def parse_feed(content: bytes | str, feed_url: str, group: str | None = None,
               content_type: str | None = None) -> Page:
    """Turn a feed document into a Page of posts with inline authors.

    Malformed entries (no link, no id and no text) are logged and counted in
    ``Page.skipped``; a document that is not a feed at all is a PayloadError.
    """
    headers = {"content-type": content_type} if content_type else None
    if isinstance(content, str):
        content = content.encode("utf-8")   # a str starting with http would be fetched as a URL
    import feedparser               # here, not at the top: loading settings checks platform names, not feeds

    parsed = feedparser.parse(content, response_headers=headers)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        reason = parsed.get("bozo_exception") or "no RSS or Atom elements"
        raise PayloadError(f"{feed_url}: not a readable feed ({reason})")
    feed = parsed.feed
    feed_link = feed.get("link") or feed_url
    page = Page(raw={"feed": _plain(feed), "version": parsed.get("version", ""), "entries": len(parsed.entries)})
    seen: set[str] = set()
    for entry in parsed.entries:
        try:
            posts = parse_entry_posts(entry, feed_url=feed_url, feed_link=feed_link, feed_title=feed.get("title"),
                                      group=group)
        except ValueError as exc:
            page.skipped += 1
            log.info("%s: skipped an entry: %s", feed_url, exc)
            continue
        for post in posts:
            if post.pid in seen:
                continue
            seen.add(post.pid)
            page.posts.append(post)
            if post.author is not None:
                page.users.append(post.author)
    return page


# weibo.com/<uid>/<bid>, or m.weibo.cn/status/<bid> with RSSHub's preferMobileLink
_WEIBO_STATUS = re.compile(r"^https?://(?:(?:www\.|m\.)?weibo\.(?:com|cn)/(?:u/)?\d{5,}/\w+|m\.weibo\.cn/(?:status|detail)/\w+)")
_WEIBO_USER = re.compile(r"^https?://(?:www\.|m\.)?weibo\.(?:com|cn)/(?:u/)?(\d{5,})/?$")
_WEIBO_ORIGINAL = re.compile(r"^https?://(?:www\.|m\.)?weibo\.(?:com|cn)/(\d{5,})/(\w+)$")


@dataclass
class _Original:
    uid: str
    name: str | None
    text: str
    link: str | None


def split_weibo_repost(body_html: str) -> tuple[str, _Original | None]:
    """RSSHub's Weibo routes put a repost's original inside the description:
    ``<blockquote> - 转发 <a href="https://weibo.com/UID">@name</a>:&ensp;text</blockquote>``
    (``readable`` mode adds a ``原博：`` link). Returns (own HTML, the original)."""
    if "<blockquote" not in body_html:
        return body_html, None
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(body_html, "lxml")
    for quote in soup.find_all("blockquote"):
        author = None
        for a in quote.find_all("a", href=True):
            m = _WEIBO_USER.match(a["href"])
            if m and a.get_text().startswith("@"):
                author = (m.group(1), a.get_text()[1:].strip() or None, a)
                break
        if author is None:
            continue
        link = None
        for a in quote.find_all("a", href=True):
            if _WEIBO_ORIGINAL.match(a["href"]) and a.find_parent("small") is not None:
                link = a["href"]
                a.find_parent("small").decompose()
        uid, name, tag = author
        quote_html = str(quote)
        after = quote_html.split(str(tag), 1)[1] if str(tag) in quote_html else quote_html
        text = html_to_text(after).lstrip(":：\u2002 ").strip()
        own = body_html.split("<blockquote", 1)[0]
        return own, _Original(uid=uid, name=name, text=text, link=link)
    return body_html, None


def _weibo_original_post(orig: _Original, feed_url: str, group: str | None) -> Post:
    """The original of a repost, as its own post (its id: its link, or a stable hash)."""
    pid = orig.link or f"https://weibo.com/{orig.uid}#sha1:" + hashlib.sha1(orig.text.encode("utf-8")).hexdigest()[:20]
    uid = f"weibo.com/{orig.uid}"
    author = User(platform=PLATFORM, uid=uid, name=orig.name, profile_url=f"https://weibo.com/{orig.uid}")
    return Post(platform=PLATFORM, pid=pid, uid=uid, text=orig.text, topics=extract_topics(orig.text),
                mentions=extract_mentions(orig.text), group_id=group, url=orig.link,
                raw={"rsshub_repost_of": orig.__dict__, "feed": feed_url}, author=author)


def parse_entry(entry: Any, feed_url: str, feed_link: str | None = None, feed_title: str | None = None,
                group: str | None = None) -> Post:
    return parse_entry_posts(entry, feed_url, feed_link, feed_title, group)[0]


def parse_entry_posts(entry: Any, feed_url: str, feed_link: str | None = None, feed_title: str | None = None,
                      group: str | None = None) -> list[Post]:
    """The entry's post, and for an RSSHub Weibo repost the original after it.

    RSSHub's Weibo titles are made from the text itself ("…[图片]", " - 转发 @x: …"),
    so for Weibo links the description alone is the text.
    """
    link = (entry.get("link") or "").strip() or None
    weibo = bool(link and _WEIBO_STATUS.match(link))
    original = None
    as_read = entry
    if weibo:
        body_html = ""
        if entry.get("content"):
            body_html = "\n".join(c.get("value", "") for c in entry.content if isinstance(c, dict))
        body_html = body_html or entry.get("summary") or entry.get("description") or ""
        own_html, original = split_weibo_repost(body_html)
        if own_html.strip():
            entry = _with_text(entry, own_html)
    post = _parse_entry(entry, feed_url, feed_link, feed_title, group, weibo=weibo)
    post.raw = _plain(dict(as_read))            # the entry as the feed had it, original included
    if original is None:
        return [post]
    orig = _weibo_original_post(original, feed_url, group)
    post.repost_of = orig.pid
    return [post, orig]


def _with_text(entry: Any, body_html: str) -> Any:
    import feedparser

    copy = feedparser.FeedParserDict(entry)
    copy["summary"] = body_html
    copy.pop("content", None)
    return copy


def _parse_entry(entry: Any, feed_url: str, feed_link: str | None = None, feed_title: str | None = None,
                 group: str | None = None, weibo: bool = False) -> Post:
    link = (entry.get("link") or "").strip() or None
    guid = (entry.get("id") or "").strip()
    title = html_to_text(entry.get("title"))
    body_html = ""
    if entry.get("content"):
        body_html = "\n".join(c.get("value", "") for c in entry.content if isinstance(c, dict))
    if not body_html:
        body_html = entry.get("summary") or entry.get("description") or ""
    body = html_to_text(body_html)
    text = body if weibo and body else _join_title(title, body)
    if not (guid or link):
        if not text:
            raise ValueError("entry has no id, link or text")
        guid = "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]
    key = guid or link or ""
    pid = key if re.match(r"^[a-z][a-z0-9+.-]*://", key, re.I) else f"{feed_url}#{key}"

    author_name = (entry.get("author") or "").strip()
    detail = entry.get("author_detail") or {}
    author_href = (detail.get("href") or "").strip() or None
    site = _site(link) or _site(feed_link) or _site(feed_url)
    weibo_uid = re.match(r"^https?://(?:www\.|m\.)?weibo\.(?:com|cn)/(?:u/)?(\d{5,})(?:/|$)", link or "")
    if author_href:
        uid = author_href
    elif weibo_uid:
        # RSSHub's Weibo routes link to weibo.com/<uid>/<bid>: keep the numeric
        # id so a renamed account stays one user.
        uid = f"weibo.com/{weibo_uid.group(1)}"
    elif author_name:
        uid = f"{site}/{author_name}"
    else:
        # A feed without per-entry authors speaks with one voice: the channel's.
        uid = feed_link or feed_url
        author_name = (feed_title or "").strip() or site
    author = User(platform=PLATFORM, uid=uid, name=html_to_text(author_name) or None, profile_url=author_href)

    # dict.get: feedparser's own .get maps a missing updated_parsed to published_parsed with a warning
    created = _struct_to_iso(dict.get(entry, "published_parsed")) or _struct_to_iso(dict.get(entry, "updated_parsed"))
    if created is None and (entry.get("published") or entry.get("updated")):
        log.info("%s: unreadable date %r on %s", feed_url, entry.get("published") or entry.get("updated"), pid)
    topics = [t.get("term", "").strip() for t in entry.get("tags") or [] if isinstance(t, dict)]
    topics = [t for t in topics if t]
    for t in extract_topics(text):
        if t not in topics:
            topics.append(t)
    return Post(platform=PLATFORM, pid=pid, uid=uid, text=text, created_at=created, topics=topics,
                mentions=extract_mentions(text), group_id=group, url=link, raw=_plain(dict(entry)), author=author)


def _join_title(title: str, body: str) -> str:
    """Microblog routes repeat the start of the text as the title; keep it once."""
    if not title:
        return body
    if not body:
        return title
    t = title.rstrip("…. ").strip()
    if t and (body.startswith(t) or t in body[: len(t) + 20]):
        return body
    return f"{title}\n{body}"


class RSSSource(Source):
    """Any RSS/Atom feed or RSSHub route; reads only."""

    platform = PLATFORM

    def __init__(self, settings: Any, http: Any, secrets: dict[str, str | None] | None = None,
                 validators: dict[str, tuple[str | None, str | None]] | None = None):
        super().__init__(settings, http, secrets)
        # url -> (etag, last_modified); the crawler loads and saves these
        # through storage.platforms so unchanged feeds cost a 304.
        self.validators: dict[str, tuple[str | None, str | None]] = dict(validators or {})
        self.changed: set[str] = set()

    # -- configuration -------------------------------------------------
    def feed_url(self, value: str) -> str:
        """A query value as a feed URL: full URLs as they are, routes joined to base_url."""
        value = (value or "").strip()
        if re.match(r"^https?://", value, re.I):
            return value
        if value.startswith("/"):
            base = (self.settings.base_url or "").rstrip("/")
            if not base:
                raise SourceError(f"source {self.settings.name!r}: the route {value!r} needs base_url "
                                  "(your RSSHub address, e.g. http://127.0.0.1:1200)")
            return base + value
        raise SourceError(f"rss query value {value!r} must be a feed URL (https://...) "
                          "or an RSSHub route starting with / such as /douban/group/:id")

    def _params(self, url: str) -> dict[str, str] | None:
        key = self.secrets.get("token")
        base = (self.settings.base_url or "").rstrip("/")
        # RSSHub's ACCESS_KEY goes only to our own RSSHub, never to third-party feeds.
        if key and base and url.startswith(base + "/"):
            return {"key": key}
        return None

    # -- reads -----------------------------------------------------------
    def read_feed(self, value: str, group: str | None = None) -> Page:
        url = self.feed_url(value)
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"}
        etag, modified = self.validators.get(url, (None, None))
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        resp = self.http.get(url, params=self._params(url), headers=headers)
        for _ in range(MAX_REDIRECTS):
            # The polite client never follows redirects (a login redirect is a
            # signal on Weibo); feeds move (http -> https, new paths) all the time.
            location = resp.headers.get("Location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                break
            target = urljoin(str(resp.url), location)
            log.info("%s: feed redirected to %s", url, target)
            resp = self.http.get(target, params=self._params(target), headers=headers)
        status = resp.status_code
        if status == 304:
            return Page(raw={"not_modified": True, "url": url})
        if status in (401, 403, 429):
            retry = resp.headers.get("Retry-After")
            raise BlockedError(f"http_{status}", f"{url}: HTTP {status}",
                               retry_after=parse_retry_after(retry))
        if status >= 300:
            raise SourceError(f"{url}: HTTP {status}")
        page = parse_feed(resp.content, url, group=group, content_type=resp.headers.get("content-type"))
        new_etag, new_modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
        if page.skipped:
            # The crawler re-fetches a page with malformed items; a 304 then
            # would replace this page with an empty one. Keep no validators.
            self.validators.pop(url, None)
        elif new_etag or new_modified:
            self.validators[url] = (new_etag, new_modified)
        self.changed.add(url)
        return page

    def search_posts(self, keyword: str, cursor: str | None = None) -> Page:
        return self.read_feed(keyword)

    def topic_posts(self, topic: str, cursor: str | None = None) -> Page:
        return self.read_feed(topic)

    def group_posts(self, group: str, cursor: str | None = None) -> Page:
        return self.read_feed(group, group=group)

    def users_by_tag(self, tag: str, cursor: str | None = None) -> Page:
        return self.read_feed(tag)

    def user_profile(self, uid: str) -> User:
        raise UnsupportedError("rss feeds carry no user profiles (set fetch_authors = false for rss sources)")

    def user_posts(self, uid: str, cursor: str | None = None) -> Page:
        raise UnsupportedError("rss feeds cannot list one author's posts (set fetch_authors = false for rss sources)")


SOURCE_CLASS = RSSSource
