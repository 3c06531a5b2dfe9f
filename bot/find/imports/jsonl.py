"""The JSON-lines import contract: one post per line.

``{"id": str, "user_id": str, "text": str, "created_at": ISO-8601 (optional),
"user_name": str (optional), "topics": [str] (optional), "platform": str
(optional, default "import")}``. Extra keys are kept in the raw payload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from config.times import platform_time
from nlp.clean import extract_mentions, extract_topics
from storage.records import Post, User
from bot.find.imports import BadLine, Item, json_line

FORMAT = "jsonl"


def parse_record(obj: Any) -> Post:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    out: dict[str, str] = {}
    for key in ("id", "user_id"):
        v = obj.get(key)
        if isinstance(v, bool) or v is None or v == "":
            raise ValueError(f"missing {key!r}")
        if isinstance(v, int):
            v = str(v)
        if not isinstance(v, str):
            raise ValueError(f"{key!r} must be a string, got {type(v).__name__}")
        out[key] = v
    text = obj.get("text")
    if not isinstance(text, str):
        raise ValueError("missing 'text'" if text is None else f"'text' must be a string, got {type(text).__name__}")
    platform = obj.get("platform", "import")
    if not isinstance(platform, str) or not platform:
        raise ValueError("'platform' must be a non-empty string")
    created = obj.get("created_at")
    if created is not None and not isinstance(created, str):
        raise ValueError(f"created_at must be an ISO-8601 string, got {type(created).__name__}")
    created_at = platform_time(created)       # naive times are China time
    topics = obj.get("topics")
    if topics is None:
        topics = extract_topics(text)
    elif not (isinstance(topics, list) and all(isinstance(t, str) for t in topics)):
        raise ValueError("'topics' must be a list of strings")
    name = obj.get("user_name")
    if name is not None and not isinstance(name, str):
        raise ValueError("'user_name' must be a string")
    author = User(platform=platform, uid=out["user_id"], name=name) if name else None
    return Post(platform=platform, pid=out["id"], uid=out["user_id"], text=text, created_at=created_at,
                topics=list(topics), mentions=extract_mentions(text), raw=obj, author=author)


def read(path: Path) -> Iterator[Item]:
    with open(path, "rb") as fh:
        for n, raw_line in enumerate(fh, start=1):
            line = raw_line.strip()
            if n == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line:
                continue
            obj = json_line(n, line)
            if isinstance(obj, BadLine):
                yield obj
                continue
            try:
                yield parse_record(obj)
            except ValueError as exc:
                yield BadLine(n, str(exc))
