"""weibo-crawler's output (dataabc/weibo-crawler): SQLite, CSV (and its JSON).

Why: weibo-crawler is the other crawler managers already use, usually to
pull whole timelines of chosen accounts. Its files come in as ``weibo``
platform records:

- SQLite (``weibodata.db``): tables ``user`` (id, nick_name, gender,
  follower_count, follow_count, ..., bio) and ``weibo`` (id, bid, user_id,
  screen_name, text, topics, at_users, created_at, attitudes_count,
  comments_count, reposts_count, retweet_id, ...), plus ``comments`` when
  present.
- CSV: the per-account ``weibo/<name>/<user_id>.csv`` with Chinese headers
  (正文, 完整日期, 点赞数, 源微博id, ...; the user id comes from the file name),
  ``users.csv`` (用户id, 昵称, 粉丝数, 简介, ...), or the same columns under
  their English names.
- JSON: ``<user_id>.json`` with ``user`` and ``weibo``.

- comment CSVs ``<name>_comments.csv`` and ``<name>_<weibo_id>_comments.csv``
  (``id,weibo_id,created_at,user_screen_name,text,pic_url,like_count``): they
  carry no commenter id, so the commenter is user ``name:<screen name>`` (Weibo
  screen names are unique); the SQLite ``comments`` table has the real id and
  ``root_id``, the top-level comment a reply belongs to.

A repost's original (源微博...) becomes its own post and the repost points at
it (``repost_of``). Every column, known or not, stays in the raw payload.
Topics and @users are joined with an ASCII comma by weibo-crawler and split on
it alone: a topic may itself hold a full-width comma or spaces
("过刚刚好的生活，从小小的我开始").
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from config.times import platform_time
from bot.errors import HuaxiangError
from bot.find.imports import BadLine, Item, load_json, poison
from bot.find.imports.mediacrawler import (clean_text, csv_header, csv_rows, normalise_gender, parse_count, read_text,
                                      split_list, text_id)
from nlp.clean import extract_mentions, extract_topics
from bot.find.sources.weibo import PLATFORM   # its files are Weibo's, whatever the crawl was
from storage.records import Post, User

log = logging.getLogger(__name__)

FORMAT = "weibo-crawler"
SQLITE_MAGIC = b"SQLite format 3\x00"

_POST_CN = {
    "id": "id", "bid": "bid", "正文": "text", "头条文章url": "article_url", "原始图片url": "pics", "视频url": "video_url",
    "Live Photo视频url": "live_photo_url", "位置": "location", "日期": "date", "工具": "source",
    "点赞数": "attitudes_count", "评论数": "comments_count", "转发数": "reposts_count", "话题": "topics",
    "@用户": "at_users", "完整日期": "full_created_at", "是否编辑过": "edited", "编辑次数": "edit_count",
}
CN_COLUMNS: dict[str, str] = {
    **_POST_CN,
    "是否原创": "original", "源用户id": "retweet_user_id", "源用户昵称": "retweet_screen_name",
    **{"源微博" + cn: "retweet_" + en for cn, en in _POST_CN.items()},
    # users.csv
    "用户id": "user_id", "昵称": "screen_name", "性别": "gender", "生日": "birthday", "所在地": "location",
    "IP属地": "ip_location", "学习经历": "education", "公司": "company", "注册时间": "registration_time",
    "阳光信用": "sunshine", "微博数": "statuses_count", "粉丝数": "followers_count", "关注数": "follow_count",
    "简介": "description", "主页": "profile_url", "头像": "profile_image_url", "高清头像": "avatar_hd",
    "微博等级": "urank", "会员等级": "mbrank", "是否认证": "verified", "认证类型": "verified_type", "认证信息": "verified_reason",
}
POST_REQUIRED = ("id", "text")
POST_MARKERS = {"text", "bid", "full_created_at", "created_at", "attitudes_count", "reposts_count", "retweet_id", "at_users"}
USER_MARKERS = ("followers_count", "follower_count", "follow_count", "description", "bio", "statuses_count", "nick_name")
COMMENT_COLUMNS = {"id", "weibo_id", "user_screen_name", "text"}


def split_joined(value: Any) -> list[str]:
    """weibo-crawler's comma-joined list column (topics, at_users) as a list, split on "," only."""
    if value is None:
        return []
    if isinstance(value, (list, dict)):
        return split_list(value)
    text = str(value).strip()
    if text[:1] == "[":
        return split_list(text)
    return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


def _video_type(rec: dict[str, Any], prefix: str = "") -> str | None:
    if _str(rec.get(prefix + "video_url")):
        return "video"
    if _str(rec.get(prefix + "live_photo_url")):
        return "live_photo"
    return None


def _pics(rec: dict[str, Any], prefix: str = "") -> list[str] | None:
    if prefix + "pics" not in rec:
        return None
    return split_joined(rec.get(prefix + "pics"))


def _int(value: Any) -> int | None:
    n = parse_count(value)
    return n if n is not None else None


def _first(rec: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        v = rec.get(k)
        if v is not None and not (isinstance(v, str) and not v.strip()):
            return v
    return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, (bool, int)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "是"):
        return True
    if text in ("false", "0", "no", "否"):
        return False
    return None


def canonical(row: dict[str, Any]) -> dict[str, Any]:
    """Column names as in weibo-crawler's SQLite/JSON (Chinese CSV headers translated)."""
    return {CN_COLUMNS.get(k, k): v for k, v in row.items() if k is not None}


def parse_post(rec: dict[str, Any], raw: Any, default_uid: str | None = None, default_name: str | None = None) -> list[Post]:
    """A weibo row as posts: the post, and a repost's original when the row carries it."""
    for key in POST_REQUIRED:
        if key not in rec:
            raise ValueError(f"missing {key!r}")
    pid = text_id(rec.get("id"), "id")
    uid_value = _first(rec, "user_id") or default_uid
    if uid_value is None:
        raise ValueError("missing 'user_id'")
    uid = text_id(uid_value, "user_id")
    text = clean_text(rec.get("text"))
    created = platform_time(_first(rec, "full_created_at", "created_at", "date"))
    topics = split_joined(rec.get("topics"))
    for t in extract_topics(text):
        if t not in topics:
            topics.append(t)
    mentions = split_joined(rec.get("at_users")) or extract_mentions(text)
    bid = _str(rec.get("bid"))
    name = _str(rec.get("screen_name")) or default_name
    out: list[Post] = []
    repost_of = _str(rec.get("retweet_id"))
    original_flag = _bool(rec.get("original"))
    if repost_of and original_flag is not True and _first(rec, "retweet_user_id") and "retweet_text" in rec:
        ouid = text_id(rec["retweet_user_id"], "源用户id")
        otext = clean_text(rec.get("retweet_text"))
        obid = _str(rec.get("retweet_bid"))
        oname = _str(rec.get("retweet_screen_name"))
        out.append(Post(
            platform=PLATFORM, pid=repost_of, uid=ouid, text=otext,
            created_at=platform_time(_first(rec, "retweet_full_created_at", "retweet_date")),
            topics=split_joined(rec.get("retweet_topics")) or extract_topics(otext),
            mentions=split_joined(rec.get("retweet_at_users")) or extract_mentions(otext),
            source=_str(rec.get("retweet_source")), pic_urls=_pics(rec, "retweet_"),
            video_type=_video_type(rec, "retweet_"), edit_count=_int(rec.get("retweet_edit_count")),
            likes=parse_count(rec.get("retweet_attitudes_count")), comments=parse_count(rec.get("retweet_comments_count")),
            reposts=parse_count(rec.get("retweet_reposts_count")),
            url=f"https://weibo.com/{ouid}/{obid}" if obid else f"https://m.weibo.cn/detail/{repost_of}",
            raw={"retweeted_from_row": raw}, author=User(platform=PLATFORM, uid=ouid, name=oname) if oname else None,
        ))
    region = _str(rec.get("ip"))
    post = Post(
        platform=PLATFORM, pid=pid, uid=uid, text=text, created_at=created, topics=topics, mentions=mentions,
        likes=parse_count(rec.get("attitudes_count")), comments=parse_count(rec.get("comments_count")),
        reposts=parse_count(rec.get("reposts_count")), repost_of=repost_of,
        region=region.replace("发布于", "").strip() if region else None,
        url=f"https://weibo.com/{uid}/{bid}" if bid else f"https://m.weibo.cn/detail/{pid}",
        raw=raw, author=User(platform=PLATFORM, uid=uid, name=name) if name else None,
        source=_str(rec.get("source")), pic_urls=_pics(rec), video_type=_video_type(rec),
        edit_count=_int(rec.get("edit_count")),
    )
    return [post, *out]


def parse_user(rec: dict[str, Any], raw: Any) -> User:
    uid = text_id(_first(rec, "id", "user_id"), "id")
    return User(
        platform=PLATFORM, uid=uid, name=_str(_first(rec, "nick_name", "screen_name")),
        gender=normalise_gender(rec.get("gender")),
        followers=parse_count(_first(rec, "follower_count", "followers_count")),
        following=parse_count(_first(rec, "follow_count", "following_count")),
        posts_count=parse_count(rec.get("statuses_count")), location=_str(rec.get("location")),
        bio=clean_text(_first(rec, "bio", "description")) or None,
        profile_url=_str(_first(rec, "main_page_url", "profile_url")),
        avatar_url=_str(_first(rec, "avatar_url", "avatar_hd", "profile_image_url")),
        verified=_bool(rec.get("verified")), verified_reason=_str(rec.get("verified_reason")),
        raw=raw, full_profile=True,
        verified_type=_verified_type(rec.get("verified_type")), ip_location=_str(rec.get("ip_location")),
        birthday=_str(rec.get("birthday")), education=_str(_first(rec, "education", "edu")),
        company=_str(rec.get("company")), registered_at=_str(_first(rec, "registration_time", "reg_date")),
    )


def _verified_type(value: Any) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def parse_comment(rec: dict[str, Any], raw: Any) -> Post:
    """A comment row (SQLite ``comments`` or a comment CSV) with its thread."""
    pid = text_id(rec.get("id"), "id")
    name = _str(rec.get("user_screen_name"))
    if _first(rec, "user_id") is not None:
        uid = text_id(rec.get("user_id"), "user_id")
    elif name:
        uid = "name:" + name            # the comment CSVs carry no commenter id
    else:
        raise ValueError("missing 'user_id' and 'user_screen_name'")
    parent = text_id(rec.get("weibo_id"), "weibo_id")
    root = _str(rec.get("root_id"))
    root = root if root and root != pid else None
    text = clean_text(rec.get("text"))
    pic = _str(rec.get("pic_url"))
    return Post(platform=PLATFORM, pid=pid, uid=uid, text=text, created_at=platform_time(rec.get("created_at")),
                kind="comment", parent_pid=parent, topics=extract_topics(text), mentions=extract_mentions(text),
                likes=parse_count(rec.get("like_count")), raw=raw, reply_to=root, thread_root=root,
                pic_urls=[pic] if pic else None,
                author=User(platform=PLATFORM, uid=uid, name=name, avatar_url=_str(rec.get("user_avatar_url"))) if name else None)


# -- files ------------------------------------------------------------------------------------

def read(path: Path) -> Iterator[Item]:
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head == SQLITE_MAGIC:
        yield from read_sqlite(path)
        return
    text = read_text(path)
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        yield from read_json(path, text)
        return
    yield from read_csv(path, text)


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]


def read_sqlite(path: Path) -> Iterator[Item]:
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise HuaxiangError(f"{path}: cannot read SQLite file ({exc})") from None
    try:
        if "weibo" not in tables:
            raise HuaxiangError(f"{path}: no 'weibo' table; weibo-crawler's SQLite output has tables 'user' and 'weibo' "
                                f"(found: {', '.join(sorted(tables)) or 'none'})")
        cols = _columns(con, "weibo")
        for col in ("id", "user_id", "text"):
            if col not in cols:
                raise HuaxiangError(f"{path}: table 'weibo' is missing column {col!r}")
        con.row_factory = sqlite3.Row
        if "user" in tables:
            if "id" not in _columns(con, "user"):
                raise HuaxiangError(f"{path}: table 'user' is missing column 'id'")
            for n, row in enumerate(con.execute('SELECT * FROM "user" ORDER BY rowid'), start=1):
                rec = dict(row)
                try:
                    yield parse_user(rec, rec)
                except ValueError as exc:
                    yield BadLine(n, f"user row {n}: {exc}")
        for n, row in enumerate(con.execute("SELECT * FROM weibo ORDER BY rowid"), start=1):
            rec = dict(row)
            try:
                yield from parse_post(rec, rec)
            except ValueError as exc:
                yield BadLine(n, f"weibo row {n}: {exc}")
        if "comments" in tables and {"id", "weibo_id", "user_id", "text"} <= set(_columns(con, "comments")):
            for n, row in enumerate(con.execute("SELECT * FROM comments ORDER BY rowid"), start=1):
                rec = dict(row)
                try:
                    yield parse_comment(rec, rec)
                except ValueError as exc:
                    yield BadLine(n, f"comments row {n}: {exc}")
    except sqlite3.DatabaseError as exc:
        raise HuaxiangError(f"{path}: cannot read SQLite file ({exc})") from None
    finally:
        con.close()


def _default_owner(path: Path) -> tuple[str | None, str | None]:
    """weibo-crawler names per-account files weibo/<screen_name>/<user_id>.csv."""
    uid = path.stem if re.fullmatch(r"\d{5,}", path.stem) else None
    name = None
    if uid and path.parent.parent.name == "weibo" and path.parent.name != uid:
        name = path.parent.name
    return uid, name


def read_csv(path: Path, text: str) -> Iterator[Item]:
    header = csv_header(path, text)
    if not header:
        raise HuaxiangError(f"{path}: empty CSV file (no header row)")
    cols = {CN_COLUMNS.get(h, h) for h in header}
    default_uid, default_name = _default_owner(path)
    if COMMENT_COLUMNS <= cols:
        for line, row in csv_rows(path, text):
            try:
                yield parse_comment(row, row)
            except ValueError as exc:
                yield BadLine(line, str(exc))
        return
    if cols & POST_MARKERS:
        for col in POST_REQUIRED:
            if col not in cols:
                cn = {"text": " (正文 in the Chinese CSV)"}.get(col, "")
                raise HuaxiangError(f"{path}: missing column {col!r}{cn}; weibo-crawler posts need id and text")
        if "user_id" not in cols and default_uid is None:
            raise HuaxiangError(f"{path}: missing column 'user_id', and the file name is not weibo-crawler's <user_id>.csv")
        for line, row in csv_rows(path, text):
            try:
                yield from parse_post(canonical(row), row, default_uid, default_name)
            except ValueError as exc:
                yield BadLine(line, str(exc))
        return
    if ("user_id" in cols or "id" in cols) and cols & set(USER_MARKERS):
        for line, row in csv_rows(path, text):
            try:
                yield parse_user(canonical(row), row)
            except ValueError as exc:
                yield BadLine(line, str(exc))
        return
    raise HuaxiangError(f"{path}: not a weibo-crawler CSV: no 正文/text column (posts) and no 用户id with profile "
                        f"columns (users); found: {', '.join(header[:12])}")


def read_json(path: Path, text: str) -> Iterator[Item]:
    try:
        doc = load_json(text)
    except json.JSONDecodeError as exc:
        raise HuaxiangError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise HuaxiangError(f"{path}: JSON nested too deeply to read") from None
    if not isinstance(doc, dict) or "weibo" not in doc:
        raise HuaxiangError(f"{path}: not weibo-crawler JSON (expected an object with 'user' and 'weibo')")
    user = doc.get("user")
    owner_uid, owner_name = None, None
    if isinstance(user, dict) and poison(user):
        yield BadLine(0, f"user: {poison(user)}")
    elif isinstance(user, dict):
        try:
            u = parse_user(user, user)
            owner_uid, owner_name = u.uid, u.name
            yield u
        except ValueError as exc:
            yield BadLine(0, f"user: {exc}")
    weibos = doc.get("weibo")
    if not isinstance(weibos, list):
        raise HuaxiangError(f"{path}: 'weibo' must be a list of posts")
    for n, rec in enumerate(weibos, start=1):
        if not isinstance(rec, dict):
            yield BadLine(n, f"weibo[{n - 1}]: expected an object")
            continue
        if poison(rec):
            yield BadLine(n, f"weibo[{n - 1}]: {poison(rec)}")
            continue
        flat = dict(rec)
        retweet = flat.pop("retweet", None)
        if isinstance(retweet, dict):
            flat["retweet_id"] = retweet.get("id")
            for k, v in retweet.items():
                flat["retweet_" + k] = v
        try:
            yield from parse_post(flat, rec, owner_uid, owner_name)
        except ValueError as exc:
            yield BadLine(n, f"weibo[{n - 1}]: {exc}")
