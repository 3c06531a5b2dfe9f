"""MediaCrawler's Weibo output (JSON array, JSON lines or CSV): posts, comments, creators.

Why: MediaCrawler (NanmiCoder/MediaCrawler) is the crawler many managers
already ran; its ``data/weibo/{json,jsonl,csv}/*_contents_*``, ``*_comments_*``
and ``*_creators_*`` files come straight in, as ``weibo`` platform records so
they merge with what huaxiang crawls itself.

Each record is recognised by its keys: ``comment_id`` -> a comment on
``note_id``; ``note_id`` -> a post; ``user_id`` with profile columns
(``desc``, ``fans``, ``follows``) -> a creator profile. Columns we do not map
stay in the raw payload.

Two eras of its store code are read alike:

- until 2026-06 records carry the author's ``user_id`` (and a ``create_time``
  that, from Dec 2023 until the fix of 2026-07-30, was the China wall clock
  read as UTC: 8 hours late). ``create_date_time`` was always right, so it
  wins whenever present.
- since 2026-07 records carry ``creator_hash`` (an anonymised id) and a masked
  ``nickname`` ("胡***歌"); the author becomes user ``hash:<creator_hash>``,
  which can never collide with a numeric Weibo id, and the masked name is
  kept as given.

Its SQLite store (``database/sqlite_tables.db``: tables ``weibo_note``,
``weibo_note_comment`` and, until 2026-06, ``weibo_creator``) is read too.
A comment's ``parent_comment_id`` is Weibo's ``rootid``: the top-level comment
of its thread, equal to its own id for a top-level comment.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.errors import HuaxiangError
from bot.find.imports import BadLine, Item, json_line, load_json, poison
from bot.find.sources.rss import html_to_text
from bot.find.sources.weibo import PLATFORM   # its files are Weibo's, whatever the crawl was
from config.times import platform_time
from nlp.clean import extract_mentions, extract_topics
from storage.records import Post, User

log = logging.getLogger(__name__)

FORMAT = "mediacrawler"

POST_REQUIRED = ("note_id", "content")
COMMENT_REQUIRED = ("comment_id", "note_id", "content")
USER_REQUIRED = ("user_id",)
AUTHOR_KEYS = ("user_id", "creator_hash")       # either names the author
SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_TABLES = ("weibo_creator", "weibo_note", "weibo_note_comment")
USER_MARKERS = ("desc", "fans", "follows", "tag_list")


# -- shared value parsers (weibo_crawler uses them too) ------------------------------

def parse_count(value: Any) -> int | None:
    """Counts arrive as ints, digit strings, '1.2万' / '3亿' or '' (unknown)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**63 else None      # SQLite integers are 64-bit; counts are never negative
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and 0 <= value < 2**63 else None
    text = str(value).strip().replace(",", "").replace("+", "")
    if not text:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(万|w|W|亿)?", text)
    if not m:
        return None
    n = float(m.group(1))
    unit = m.group(2)
    if unit in ("万", "w", "W"):
        n *= 10_000
    elif unit == "亿":
        n *= 100_000_000
    return int(n) if n < 2**63 else None


def normalise_gender(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    if text in ("f", "female", "女", "woman"):
        return "f"
    if text in ("m", "male", "男", "man"):
        return "m"
    return None


def clean_text(value: Any) -> str:
    """Post text without HTML (older exports kept Weibo's markup and entities)."""
    text = "" if value is None else str(value)
    return html_to_text(text) if ("<" in text or "&" in text) else text.strip()


def split_list(value: Any) -> list[str]:
    """A list column: a JSON list/dict, or words separated by commas, spaces or semicolons."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, dict):
        return [str(v).strip() for v in value.values() if str(v).strip()]
    text = str(value).strip()
    if not text:
        return []
    if text[0] in "[{":
        try:
            return split_list(json.loads(text))
        except (json.JSONDecodeError, RecursionError):
            pass
    return [t for t in (p.strip() for p in re.split(r"[,，;；|\s]+", text)) if t]


def text_id(value: Any, key: str) -> str:
    if value is None or isinstance(value, bool):
        raise ValueError(f"missing {key!r}")
    if isinstance(value, (dict, list)):
        raise ValueError(f"{key!r} must be a string or a number, got {type(value).__name__}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise ValueError(f"missing {key!r}")
    return text


# -- records -------------------------------------------------------------------------------

def _require(rec: dict[str, Any], keys: tuple[str, ...]) -> None:
    for k in keys:
        if k not in rec or rec[k] is None:
            raise ValueError(f"missing {k!r}")


def _check_weibo(rec: dict[str, Any]) -> None:
    url = str(rec.get("note_url") or rec.get("profile_url") or "")
    if url and "weibo" not in url:
        raise ValueError(f"not a Weibo record ({url}); only MediaCrawler's Weibo output is supported")


def _author(rec: dict[str, Any], uid: str) -> User | None:
    name = str(rec.get("nickname") or "").strip() or None
    if name is None and not rec.get("avatar"):
        return None
    return User(platform=PLATFORM, uid=uid, name=name, gender=normalise_gender(rec.get("gender")),
                profile_url=str(rec.get("profile_url") or "") or None, avatar_url=str(rec.get("avatar") or "") or None)


def _created(rec: dict[str, Any]) -> str | None:
    """``create_date_time`` first: ``create_time`` was 8 hours late from Dec 2023 to Jul 2026."""
    created = platform_time(rec.get("create_date_time"))
    if created is None:
        created = platform_time(rec.get("create_time"))
    return created


def author_uid(rec: dict[str, Any]) -> str:
    """The author's id: ``user_id`` (until 2026-06) or ``hash:<creator_hash>`` (since 2026-07)."""
    uid = rec.get("user_id")
    if uid is not None and str(uid).strip():
        return text_id(uid, "user_id")
    digest = rec.get("creator_hash")
    if digest is not None and str(digest).strip():
        return "hash:" + text_id(digest, "creator_hash")
    raise ValueError("missing 'user_id' (or 'creator_hash', MediaCrawler's anonymised author since 2026-07)")


def _thread(rec: dict[str, Any], cid: str) -> str | None:
    """The top-level comment a reply belongs to (None for a top-level comment)."""
    root = rec.get("parent_comment_id")
    if root is None or isinstance(root, bool) or str(root).strip() in ("", "0", cid):
        return None
    return text_id(root, "parent_comment_id")


def parse_post(rec: dict[str, Any]) -> Post:
    _require(rec, POST_REQUIRED)
    _check_weibo(rec)
    pid, uid = text_id(rec["note_id"], "note_id"), author_uid(rec)
    text = clean_text(rec["content"])
    return Post(
        platform=PLATFORM, pid=pid, uid=uid, text=text, created_at=_created(rec),
        topics=extract_topics(text), mentions=extract_mentions(text),
        likes=parse_count(rec.get("liked_count")), comments=parse_count(rec.get("comments_count")),
        reposts=parse_count(rec.get("shared_count")), region=str(rec.get("ip_location") or "").strip() or None,
        url=str(rec.get("note_url") or "") or f"https://m.weibo.cn/detail/{pid}", raw=rec, author=_author(rec, uid),
    )


def parse_comment(rec: dict[str, Any]) -> Post:
    _require(rec, COMMENT_REQUIRED)
    _check_weibo(rec)
    pid, uid = text_id(rec["comment_id"], "comment_id"), author_uid(rec)
    parent = text_id(rec["note_id"], "note_id")
    root = _thread(rec, pid)
    text = clean_text(rec["content"])
    return Post(
        platform=PLATFORM, pid=pid, uid=uid, text=text, created_at=_created(rec), kind="comment", parent_pid=parent,
        reply_to=root, thread_root=root,
        topics=extract_topics(text), mentions=extract_mentions(text), likes=parse_count(rec.get("comment_like_count")),
        comments=parse_count(rec.get("sub_comment_count")), region=str(rec.get("ip_location") or "").strip() or None,
        raw=rec, author=_author(rec, uid),
    )


def parse_creator(rec: dict[str, Any]) -> User:
    _require(rec, USER_REQUIRED)
    _check_weibo(rec)
    return User(
        platform=PLATFORM, uid=text_id(rec["user_id"], "user_id"), name=str(rec.get("nickname") or "").strip() or None,
        bio=clean_text(rec.get("desc")) or None, gender=normalise_gender(rec.get("gender")),
        followers=parse_count(rec.get("fans")), following=parse_count(rec.get("follows")),
        tags=split_list(rec.get("tag_list")), location=str(rec.get("ip_location") or "").strip() or None,
        avatar_url=str(rec.get("avatar") or "") or None, raw=rec, full_profile=True,
    )


def parse_record(rec: Any) -> Post | User:
    if not isinstance(rec, dict):
        raise ValueError(f"expected an object, got {type(rec).__name__}")
    if "comment_id" in rec:
        return parse_comment(rec)
    if "note_id" in rec:
        return parse_post(rec)
    if "user_id" in rec and any(k in rec for k in USER_MARKERS):
        return parse_creator(rec)
    raise ValueError("not a MediaCrawler Weibo post, comment or creator (no note_id, comment_id or user_id with profile columns)")


# -- files ------------------------------------------------------------------------------------

def read_text(path: Path) -> str:
    """UTF-8 (with or without BOM); GB18030 as a fallback for CSVs re-saved by Excel."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise HuaxiangError(f"{path}: neither UTF-8 nor GB18030 text ({exc.reason} at byte {exc.start})") from None
        log.info("%s: read as GB18030", path)
        return text


# A whole long post sits in one CSV field; the csv module's default limit
# (128 Ki characters) would refuse a 100 KB post.
CSV_FIELD_LIMIT = 16 * 1024 * 1024


def _csv_reader(path: Path, text: str) -> csv.DictReader:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    return csv.DictReader(io.StringIO(text, newline=""))


def csv_header(path: Path, text: str) -> list[str]:
    """The header row's column names (stripped); [] for an empty file."""
    reader = _csv_reader(path, text)
    try:
        return [(f or "").strip() for f in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise HuaxiangError(f"{path}: line 1: not readable as CSV ({exc})") from None


def csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs; the header must exist. A row the csv module
    cannot read at all stops the file with its line number."""
    reader = _csv_reader(path, text)
    try:
        if not reader.fieldnames:
            raise HuaxiangError(f"{path}: empty CSV file (no header row)")
        reader.fieldnames = [(f or "").strip() for f in reader.fieldnames]
        for row in reader:
            extra = row.pop(None, None)
            if extra:
                row["_extra_columns"] = extra
            yield reader.line_num, row
    except csv.Error as exc:
        raise HuaxiangError(f"{path}: line {reader.line_num}: not readable as CSV ({exc})") from None


def _csv_kind(path: Path, header: list[str]) -> tuple[str, ...]:
    cols = set(header)
    if "comment_id" in cols or "note_id" in cols:
        need = COMMENT_REQUIRED if "comment_id" in cols else POST_REQUIRED
        if not cols & set(AUTHOR_KEYS):
            raise HuaxiangError(f"{path}: missing column 'user_id' (or 'creator_hash', written since 2026-07)")
    elif "user_id" in cols and cols & set(USER_MARKERS):
        need = USER_REQUIRED
    else:
        raise HuaxiangError(f"{path}: not a MediaCrawler Weibo CSV: the header has no note_id, comment_id "
                            f"or user_id with profile columns (found: {', '.join(header[:12])})")
    for col in need:
        if col not in cols:
            raise HuaxiangError(f"{path}: missing column {col!r} (this MediaCrawler file needs {', '.join(need)})")
    return need


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == SQLITE_MAGIC


def read_sqlite(path: Path) -> Iterator[Item]:
    """MediaCrawler's SQLite store: creators, then notes, then comments (rowid order)."""
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise HuaxiangError(f"{path}: cannot read SQLite file ({exc})") from None
    try:
        found = [t for t in SQLITE_TABLES if t in tables]
        if not found:
            raise HuaxiangError(f"{path}: not MediaCrawler's SQLite store: no table weibo_note or weibo_note_comment "
                                f"(found: {', '.join(sorted(tables)[:12]) or 'none'})")
        for table in found:
            for n, row in enumerate(con.execute(f'SELECT * FROM "{table}" ORDER BY rowid'), start=1):
                item = _item(n, {k: row[k] for k in row.keys() if k not in ("id", "add_ts")})
                if isinstance(item, BadLine):
                    item.problem = f"{table} row {n}: {item.problem}"
                yield item
    except sqlite3.DatabaseError as exc:
        raise HuaxiangError(f"{path}: cannot read SQLite file ({exc})") from None
    finally:
        con.close()


def read(path: Path) -> Iterator[Item]:
    path = Path(path)
    if is_sqlite(path):
        yield from read_sqlite(path)
        return
    text = read_text(path)
    stripped = text.lstrip()
    if path.suffix.lower() == ".csv" or (stripped and stripped[0] not in "[{"):
        _csv_kind(path, csv_header(path, text))
        for line, row in csv_rows(path, text):
            yield _item(line, row)
        return
    if stripped.startswith("["):
        try:
            records = load_json(text)
        except json.JSONDecodeError as exc:
            raise HuaxiangError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        except RecursionError:
            raise HuaxiangError(f"{path}: JSON nested too deeply to read") from None
        for n, rec in enumerate(records, start=1):
            yield _item(n, rec)
        return
    lines = text.splitlines()
    if lines and lines[0].strip() == "{":
        # One pretty-printed object rather than JSON lines.
        try:
            yield _item(1, load_json(text))
            return
        except (json.JSONDecodeError, RecursionError):
            pass
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        rec = json_line(n, line)
        yield rec if isinstance(rec, BadLine) else _item(n, rec)


def _item(line: int, rec: Any) -> Item:
    problem = poison(rec)
    if problem:
        return BadLine(line, problem)
    try:
        return parse_record(rec)
    except ValueError as exc:
        return BadLine(line, str(exc))
