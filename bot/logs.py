"""Logging setup: readable console lines, optional rotated JSON lines, and a
filter that scrubs secrets (cookies, tokens) from every record.

Why a scrubbing filter as well as care at call sites: an exception message
from an HTTP library can carry a URL with ``access_token=`` or a header dump;
the filter is the last line of defence.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

_SECRET_PATTERNS = [
    re.compile(r"(access_token=)[^&\s\"']+", re.I),
    re.compile(r"(Authorization:?\s*(?:Bearer|token)?\s*)[A-Za-z0-9._~+/=-]{8,}", re.I),
    re.compile(r"(['\"]?cookie['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+", re.I),
    re.compile(r"\b(SUBP?=)[^;\s]+"),
]


def scrub(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    for secret in extra_secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub(lambda m: m.group(1) + "***", text)
    return text


class SecretFilter(logging.Filter):
    def __init__(self, secrets: tuple[str, ...] = ()):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not kill logging
            message = str(record.msg)
        clean = scrub(message, self.secrets)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("job", "query", "source", "run_id", "fault"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_text:
            out["exc"] = record.exc_text
        elif record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: int = logging.WARNING, secrets: tuple[str, ...] = ()) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_huaxiang", False):
            root.removeHandler(h)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(SecretFilter(secrets))
    handler._huaxiang = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    handler.setLevel(level)
    for noisy in ("httpx", "httpcore", "jieba", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


class _JsonFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating JSON log that reports a failed write (a full disk) in one
    line, once, instead of logging's traceback on every record."""

    _warned = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self._warned:
            self._warned = True
            exc = sys.exc_info()[1]
            reason = getattr(exc, "strerror", None) or exc
            print(f"huaxiang: warning: cannot write the JSON log {self.baseFilename} ({reason}); "
                  "its lines are being lost", file=sys.stderr)


def json_file_problem(path: str) -> str | None:
    """Why ``[logging].json_file`` cannot take a log, or None. Rotation renames
    the file, so it must be a regular file (or not exist yet) in a folder that exists."""
    target = Path(path)
    if target.is_dir():
        return f"{path} is a folder; name a file in it, e.g. {target / 'huaxiang.jsonl'}"
    if not target.resolve().parent.is_dir():
        return f"folder {target.resolve().parent} does not exist"
    if target.exists() and not target.is_file():
        return f"{path} is not a regular file (a device or pipe cannot be rotated and may swallow the log)"
    return None


def add_json_file_handler(path: str, max_bytes: int, backups: int, secrets: tuple[str, ...] = ()) -> logging.Handler:
    """Raises HuaxiangError naming ``[logging].json_file`` when the file cannot be used."""
    from bot.errors import HuaxiangError

    problem = json_file_problem(path)
    if problem:
        raise HuaxiangError(f"[logging].json_file: {problem}")
    try:
        handler = _JsonFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    except OSError as exc:
        raise HuaxiangError(f"[logging].json_file: cannot open {path} ({exc.strerror})") from None
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretFilter(secrets))
    handler.setLevel(logging.INFO)
    handler._huaxiang = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, logging.INFO))
    return handler
