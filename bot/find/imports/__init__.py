"""Import formats. One module per format defines ``FORMAT`` (its --format
name) and ``read(path) -> Iterator[Item]``; ``bot.find.importer`` drives them.

An ``Item`` is a parsed post (``Post``, optionally with ``author``) or a
``BadLine`` saying where and what was wrong, so the driver can skip or, in
strict mode, refuse the whole file.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.errors import HuaxiangError
from storage.records import Post, User


@dataclass
class BadLine:
    line: int
    problem: str


Item = Post | User | BadLine


class Reader(Protocol):
    def __call__(self, path: Path) -> Iterator[Item]: ...


# Python refuses to turn a longer digit string into an int (CVE-2020-10735);
# such a number is kept as its text and the record reported, not the file.
MAX_INT_DIGITS = 4300

class HugeNumber(str):
    """A JSON integer too long to convert; ``poison`` reports the record holding it."""


def _parse_int(text: str) -> int | HugeNumber:
    return HugeNumber(text) if len(text) > MAX_INT_DIGITS else int(text)


def load_json(text: str | bytes) -> object:
    """``json.loads`` that never fails on a huge integer (see ``HugeNumber``).

    Raises ``json.JSONDecodeError``, ``UnicodeDecodeError`` or ``RecursionError``.
    """
    import json

    return json.loads(text, parse_int=_parse_int)


_SURROGATE = re.compile("[\ud800-\udfff]")
# In JSON text a lone surrogate can only be an escape (\ud800 ... \udfff), and
# a huge integer a long run of digits.
_MAYBE_POISON = re.compile(r"\\[uU][dD][89a-fA-F]|\d{%d}" % (MAX_INT_DIGITS + 1))


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def poison(obj: object) -> str | None:
    """Why a parsed JSON record cannot be stored, or None.

    JSON may spell a lone surrogate (``"\\ud800"``), which no UTF-8 file or
    database can hold, and integers of any length. Either would abort the
    whole import at the first write, so the record is refused as a bad line.
    """
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, HugeNumber):
            return f"a number with {len(value.lstrip('-'))} digits (at most {MAX_INT_DIGITS} are read)"
        if isinstance(value, str):
            if _has_surrogate(value):
                return "text with a lone surrogate (an escape such as \\ud800 that is not Unicode)"
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def json_line(n: int, line: str | bytes) -> object:
    """One JSON-lines record, or a ``BadLine`` saying why it cannot be read.

    Every format that reads JSON lines reports the same problems the same way:
    bad bytes, bad JSON (with the column), nesting too deep to read, and the
    values ``poison`` refuses.
    """
    import json

    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        obj = load_json(text)
    except UnicodeDecodeError as exc:
        return BadLine(n, f"not UTF-8 ({exc.reason})")
    except json.JSONDecodeError as exc:
        return BadLine(n, f"not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return BadLine(n, "JSON nested too deeply to read")
    if _MAYBE_POISON.search(text):        # the walk only where the text can hold either
        problem = poison(obj)
        if problem:
            return BadLine(n, problem)
    return obj


def item_problem(item: "Post | User") -> str | None:
    """Why a parsed post or profile cannot be stored (a last check the
    importer makes whatever the format), or None. The raw payload is not
    walked again: only JSON can spell these values, and every JSON record
    went through ``poison`` where it was read. Kept lean: it runs per item."""
    for key, value in vars(item).items():
        if isinstance(value, str):
            if _has_surrogate(value):
                return f"{key}: text with a lone surrogate (not Unicode)"
        elif isinstance(value, list):
            if any(isinstance(v, str) and _has_surrogate(v) for v in value):
                return f"{key}: text with a lone surrogate (not Unicode)"
        elif isinstance(value, User) and key != "raw":
            problem = item_problem(value)
            if problem:
                return f"{key}.{problem}"
    return None


def formats() -> dict[str, Reader]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "FORMAT", None)
        if name:
            found[name] = module.read
    return found


def reader_for(fmt: str) -> Reader:
    """The reader of a named format (``auto`` is resolved by ``detect_format`` first)."""
    known = formats()
    if fmt not in known:
        raise HuaxiangError(f"unknown import format {fmt!r} (known: {', '.join(sorted(known))})")
    return known[fmt]


# -- --format auto ---------------------------------------------------------------------------
# Why sniff instead of trusting the file name: MediaCrawler and weibo-crawler
# both write .csv/.json files, and managers rename them. The columns (or SQLite
# tables) each tool writes are distinctive, so the file says what it is.

SQLITE_MAGIC = b"SQLite format 3\x00"
_MC_KEYS = {"note_id", "comment_id", "creator_hash"}
_MC_CREATOR = {"desc", "fans", "follows", "tag_list"}
_WC_KEYS = {"正文", "用户id", "微博数", "源微博id", "完整日期", "weibo_id", "user_screen_name", "bid", "retweet_id",
            "nick_name", "follower_count", "at_users"}
_JSONL_KEYS = {"id", "user_id", "text"}
_SNIFF_BYTES = 256 * 1024
UNKNOWN_SHAPE = ("expected MediaCrawler output (note_id / comment_id / creator_hash), weibo-crawler output "
                 "(正文 / 用户id / weibo_id columns, <user_id>.json, weibodata.db) or huaxiang JSON lines "
                 "(id, user_id, text); name one with --format")


def _by_keys(keys: set[str]) -> str | None:
    if keys & _MC_KEYS or ("user_id" in keys and keys & _MC_CREATOR):
        return "mediacrawler"
    if keys & _WC_KEYS or {"weibo", "user"} <= keys:
        return "weibo-crawler"
    if _JSONL_KEYS <= keys:
        return "jsonl"
    return None


def _sqlite_format(path: Path) -> tuple[str | None, str]:
    import sqlite3

    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise HuaxiangError(f"{path}: cannot read SQLite file ({exc})") from None
    if tables & {"weibo_note", "weibo_note_comment", "weibo_creator"}:
        return "mediacrawler", ""
    if "weibo" in tables:
        return "weibo-crawler", ""
    return None, f"an SQLite file with tables {', '.join(sorted(tables)[:8]) or 'none'}"


def _json_keys(text: str, limit: int = 50) -> list[set[str]]:
    """Key sets of the first JSON objects: a JSON array's items, one object, or JSON lines
    (damaged or incomplete lines are passed over: the reader reports them later)."""
    import json

    s = text.lstrip()
    dec = json.JSONDecoder()
    found: list[set[str]] = []
    if s.startswith("["):
        pos = 1
        while len(found) < limit:
            while pos < len(s) and s[pos] in " \t\r\n,":
                pos += 1
            try:
                obj, pos = dec.raw_decode(s, pos)
            except (ValueError, RecursionError):
                break
            if isinstance(obj, dict):
                found.append(set(obj))
        if not found and "{" in s:
            keys = _leading_keys(s[s.index("{"):])    # a first record larger than the sniff window
            return [keys] if keys else []
        return found
    try:
        obj, end = dec.raw_decode(s)
        if isinstance(obj, dict) and not s[end:].strip():
            return [set(obj)]
    except (ValueError, RecursionError):
        keys = _leading_keys(s)            # one big object cut off by the sniff window
        if len(keys) > 1:
            return [keys]
    for line in s.splitlines()[:limit]:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            found.append(set(obj))
    return found


def _leading_keys(s: str) -> set[str]:
    """The top-level keys of a JSON object whose end is not in ``s`` (a file larger than
    the sniff window): each key is read, then its value skipped while it is complete."""
    import json

    dec = json.JSONDecoder()
    keys: set[str] = set()
    pos = 1
    while True:
        while pos < len(s) and s[pos] in " \t\r\n,":
            pos += 1
        try:
            key, pos = dec.raw_decode(s, pos)
        except (ValueError, RecursionError):
            return keys
        while pos < len(s) and s[pos] in " \t\r\n:":
            pos += 1
        if not isinstance(key, str):
            return keys
        keys.add(key)
        try:
            _, pos = dec.raw_decode(s, pos)
        except (ValueError, RecursionError):
            return keys


def _csv_keys(text: str) -> set[str]:
    import csv
    import io

    try:
        header = next(csv.reader(io.StringIO(text.splitlines()[0] if text else "")), [])
    except csv.Error:
        return set()
    return {h.strip() for h in header}


def detect_format(path: Path) -> str:
    """The import format a file is written in, or one clear line saying what was expected."""
    path = Path(path)
    if not path.is_file():
        raise HuaxiangError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if head.startswith(SQLITE_MAGIC):
        fmt, found = _sqlite_format(path)
        if fmt:
            return fmt
        raise HuaxiangError(f"{path}: unknown shape ({found}); {UNKNOWN_SHAPE}")
    text = head.decode("utf-8", "ignore").lstrip("\ufeff")
    if text.lstrip()[:1] in ("[", "{"):
        key_sets = _json_keys(text)
        fmt = next((f for f in map(_by_keys, key_sets) if f), None)
        if fmt is None and path.suffix.lower() in (".jsonl", ".ndjson"):
            return "jsonl"                      # its reader reports each line it cannot use
        keys = set().union(*key_sets) if key_sets else set()
        found = f"JSON with keys {', '.join(sorted(keys)[:10])}" if keys else "JSON without an object"
    else:
        keys = _csv_keys(text)
        fmt = _by_keys(keys)
        found = f"columns {', '.join(sorted(keys)[:10])}" if keys else "an empty file"
    if fmt:
        return fmt
    raise HuaxiangError(f"{path}: unknown shape ({found}); {UNKNOWN_SHAPE}")
