"""What each export holds, and the one path every export takes to disk.

Every export goes: read rows (storage.reporting) -> redact secrets ->
pseudonymise if asked -> write the file atomically -> write the sidecar ->
record it in the export log. Raw platform payloads are never exported.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from config import Settings
from storage import reporting
from storage.db import utcnow
from bot.errors import HuaxiangError
from bot.exports.pseudonym import Pseudonymiser, load_pseudonymiser
from config import configured_secrets
from bot.exports.redact import Redactor
from bot.exports.sidecar import file_sha256, write_sidecar
from bot.exports.writers import EXTENSIONS, FORMATS, Column, write_table
from bot.report.shapes import labels

log = logging.getLogger(__name__)

Progress = Callable[[int], None]

# Profile links for platforms whose stored rows lack one.
_PROFILE_URLS = {"weibo": "https://weibo.com/u/{uid}"}


@dataclass
class AudienceFilters:
    tiers: tuple[str, ...] = ()
    min_relevance: float | None = None
    active_since: str | None = None     # ISO 8601, see parse_since
    limit: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class ExportResult:
    what: str
    format: str
    path: Path
    sidecar: Path
    rows: int
    notes: list[str] = field(default_factory=list)


_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")


def parse_since(text: str, now: datetime | None = None) -> str:
    """``30d``, ``12h``, ``2w``, ``90m``, a date ``2026-11-01`` or a full ISO time -> ISO 8601 (UTC if no offset)."""
    now = now or datetime.now(timezone.utc)
    m = _RELATIVE.match(text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
        return (now - delta).isoformat(timespec="seconds")
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HuaxiangError(f"--active-since/--since: cannot read {text!r}; use 30d, 12h, 2026-11-01 or 2026-11-01T08:00+08:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.isoformat(timespec="seconds")


def _db_file(db: sqlite_utils.Database) -> Path:
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return Path(row[2]) if row and row[2] else Path("huaxiang.db")


def _default_path(name: str, fmt: str) -> Path:
    return Path(f"{name}.{EXTENSIONS[fmt]}")


def _check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> None:
    if fmt not in allowed:
        raise HuaxiangError(f"unknown format {fmt!r}; choose from {', '.join(allowed)}")


def _analysis_meta(db: sqlite_utils.Database, run_ids: Sequence[int]) -> dict[str, Any] | None:
    run = reporting.analysis_run(db, max(run_ids)) if run_ids else reporting.analysis_run(db)
    if run is None:
        return None
    if len(run_ids) > 1:
        run = {**run, "membership_runs": list(run_ids)}
    return run


def _finish(
    db: sqlite_utils.Database,
    what: str,
    fmt: str,
    path: Path,
    columns: Sequence[Column],
    rows: Iterable[dict[str, Any]],
    meta: dict[str, Any],
    title: str,
    subject: str | None = None,
    pseudonymised: bool = False,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> ExportResult:
    if progress is not None:
        rows = _counting(rows, progress)
    try:
        stats = write_table(fmt, path, columns, rows, title=title, settings=settings)
    except OSError as exc:
        raise HuaxiangError(f"{path}: cannot write ({exc.strerror})") from None
    digest = file_sha256(path)
    run = meta.get("analysis_run")
    sidecar = write_sidecar(path, {
        "what": what,
        "format": fmt,
        "rows": stats.rows,
        "columns": [] if fmt == "uids" else [c.header for c in columns],
        "exported_at": utcnow(),
        **meta,
        "pseudonymised": pseudonymised,
        "notes": stats.notes,
        "sha256": digest,
    })
    reporting.record_export(db, what, fmt, str(path.resolve()), stats.rows, meta.get("filters", {}), subject=subject,
                            analysis_run_id=(run or {}).get("id"), pseudonymised=pseudonymised, sha256=digest)
    for note in stats.notes:
        log.warning("%s: %s", path, note)
    return ExportResult(what, fmt, path, sidecar, stats.rows, stats.notes)


def _counting(rows: Iterable[dict[str, Any]], progress: Progress) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield row
        progress(1)


# ---------------------------------------------------------------- audience

AUDIENCE_COLUMNS = [
    Column("platform", "platform"),
    Column("user_id", "user_id"),
    Column("name", "name"),
    Column("tier", "tier"),
    Column("relevance", "relevance", "number"),
    Column("influence", "influence", "number"),
    Column("top_keywords", "top_keywords", "list"),
    Column("profile_url", "profile_url"),
    Column("followers", "followers", "number"),
    Column("following", "following", "number"),
    Column("posts_count", "posts_count", "number"),
    Column("verified", "verified", "number"),
    Column("verified_reason", "verified_reason"),
    Column("gender", "gender"),
    Column("location", "location"),
    Column("tags", "tags", "list"),
    Column("bio", "bio"),
    Column("first_seen", "first_seen"),
    Column("last_seen", "last_seen"),
]
# Dropped when pseudonymising: they name or point at the person.
IDENTIFYING = {"name", "profile_url", "verified_reason", "bio"}


def member_keywords(audience_keywords: Sequence[str], texts: Sequence[str], top: int = 5) -> list[str]:
    """The audience's distinctive keywords this member uses most (why they belong)."""
    counts = []
    for i, kw in enumerate(audience_keywords):
        if not kw:
            continue
        n = sum(t.count(kw) for t in texts)
        if n:
            counts.append((-n, i, kw))
    return [kw for _, _, kw in sorted(counts)[:top]]


def export_audience(
    db: sqlite_utils.Database,
    settings: Settings,
    ref: str,
    fmt: str = "csv",
    out: str | Path | None = None,
    filters: AudienceFilters | None = None,
    pseudonymise: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """One audience's members with profile fields, tier, relevance, top keywords and profile link."""
    _check_format(fmt)
    filters = filters or AudienceFilters()
    for t in filters.tiers:
        if t not in reporting.TIERS:
            raise HuaxiangError(f"--tier: unknown tier {t!r}; choose from {', '.join(reporting.TIERS)}")
    if filters.limit is not None and filters.limit < 1:
        raise HuaxiangError("--limit must be 1 or more")
    audience = reporting.find_audience(db, ref)
    if audience is None:
        known = ", ".join(f"{a['id']} {a['label']}" for a in reporting.list_audiences(db)[:10]) or "none yet (run huaxiang analyze)"
        raise HuaxiangError(f"no audience with id or name {ref!r} (audiences: {known})")
    members = reporting.audience_members(db, audience["id"], tiers=filters.tiers or None,
                                         min_relevance=filters.min_relevance, active_since=filters.active_since,
                                         limit=filters.limit)
    pseudo = load_pseudonymiser(_db_file(db), settings.report.pseudonym_key_env) if pseudonymise else None
    redactor = Redactor(configured_secrets(settings) + (pseudo.secret_values() if pseudo else ()))
    keywords = labels(reporting.loads(audience.get("keywords"), []))
    # The analysis stores each user's own top words; for users it has none for,
    # show which of the audience's keywords they use most.
    need = [m["user_row"] for m in members if not labels(reporting.loads(m.get("user_keywords"), []))]
    texts = reporting.user_post_texts(db, need) if keywords and need and fmt != "uids" else {}
    columns = [c for c in AUDIENCE_COLUMNS if not (pseudo and c.key in IDENTIFYING)]

    def rows() -> Iterable[dict[str, Any]]:
        for m in members:
            row = dict(m)
            row["user_id"] = m["uid"]
            row["tags"] = reporting.loads(m["tags"], [])
            own = labels(reporting.loads(m.get("user_keywords"), []))[:8]
            row["top_keywords"] = own or member_keywords(keywords, texts.get(m["user_row"], []))
            if not row.get("profile_url") and m["platform"] in _PROFILE_URLS:
                row["profile_url"] = _PROFILE_URLS[m["platform"]].format(uid=m["uid"])
            if pseudo is not None:
                row = _pseudonymise_member(row, pseudo)
            yield redactor.row(row)

    name = f"audience-{audience['id']}" + ("-pseudonymised" if pseudo else "")
    path = Path(out) if out else _default_path(name, fmt)
    meta = {
        "audience": {"id": audience["id"], "name": audience["label"], "auto_name": audience["auto_name"],
                     "size": audience["size"]},
        "filters": filters.as_dict(),
        "analysis_run": _analysis_meta(db, sorted({m["run_id"] for m in members if m["run_id"] is not None})),
    }
    if pseudo is not None:
        meta["pseudonym_key_source"] = pseudo.source
        meta["dropped_columns"] = sorted(IDENTIFYING)
    return _finish(db, "audience", fmt, path, columns, rows(), meta, title=str(audience["label"]),
                   subject=str(audience["id"]), pseudonymised=pseudo is not None, progress=progress,
                   settings=settings)


def _pseudonymise_member(row: dict[str, Any], pseudo: Pseudonymiser) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in IDENTIFYING}
    out["user_id"] = pseudo.uid(row.get("platform"), row.get("uid"))
    out.pop("uid", None)
    out.pop("user_row", None)
    # @mentions among keywords could name the member or their friends.
    out["top_keywords"] = [k for k in row.get("top_keywords", []) if not k.startswith("@")]
    return out


# ---------------------------------------------------------------- memberships

MEMBERSHIP_COLUMNS = [Column("user_id", "user_id"), Column("audience_id", "audience_id", "number"),
                      Column("score", "score", "number")]


def export_memberships(
    db: sqlite_utils.Database,
    settings: Settings,
    fmt: str = "csv",
    out: str | Path | None = None,
    pseudonymise: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """``user_id,audience_id,score`` with user_id as imported (the contract benchmarks rely on)."""
    _check_format(fmt, ("csv", "xlsx", "jsonl"))
    pseudo = load_pseudonymiser(_db_file(db), settings.report.pseudonym_key_env) if pseudonymise else None
    redactor = Redactor(configured_secrets(settings) + (pseudo.secret_values() if pseudo else ()))

    def rows() -> Iterable[dict[str, Any]]:
        for r in reporting.membership_rows(db):
            if pseudo is not None:
                r = {**r, "user_id": pseudo.uid(r["platform"], r["user_id"])}
            yield redactor.row(r)

    name = "memberships" + ("-pseudonymised" if pseudo else "")
    path = Path(out) if out else _default_path(name, fmt)
    meta: dict[str, Any] = {"filters": {}, "analysis_run": _analysis_meta(db, reporting.membership_run_ids(db))}
    if pseudo is not None:
        meta["pseudonym_key_source"] = pseudo.source
    return _finish(db, "memberships", fmt, path, MEMBERSHIP_COLUMNS, rows(), meta, title="memberships",
                   pseudonymised=pseudo is not None, progress=progress, settings=settings)


# ---------------------------------------------------------------- queue and actions

QUEUE_COLUMNS = [
    Column("id", "id", "number"), Column("status", "status"), Column("kind", "kind"), Column("platform", "platform"),
    Column("source", "source"), Column("audience_id", "audience_id", "number"), Column("audience", "audience"),
    Column("target_uid", "target_uid"), Column("target_name", "target_name"), Column("target_url", "target_url"),
    Column("post_pid", "post_pid"), Column("post_url", "post_url"), Column("post_text", "post_text"),
    Column("template", "template"), Column("variant", "variant", "number"), Column("draft", "draft"),
    Column("score", "score", "number"), Column("reason", "reason"), Column("scheduled_at", "scheduled_at"),
    Column("expires_at", "expires_at"), Column("created_at", "created_at"), Column("updated_at", "updated_at"),
    Column("explanation", "explanation"), Column("approved_by", "approved_by"), Column("approved_at", "approved_at"),
    Column("sent_at", "sent_at"), Column("send_mode", "send_mode"), Column("remote_id", "remote_id"),
    Column("attempts", "attempts", "number"), Column("last_error", "last_error"),
]
ACTION_COLUMNS = [
    Column("id", "id", "number"), Column("at", "at"), Column("actor", "actor"), Column("action", "action"),
    Column("item_id", "item_id", "number"), Column("from_status", "from_status"), Column("to_status", "to_status"),
    Column("text_before", "text_before"), Column("text_after", "text_after"), Column("detail", "detail", "json"),
]


def export_queue(
    db: sqlite_utils.Database,
    settings: Settings,
    fmt: str = "csv",
    out: str | Path | None = None,
    statuses: Sequence[str] = (),
    progress: Progress | None = None,
) -> ExportResult:
    """The manual worklist: each proposed action with the post link, the target and the draft."""
    _check_format(fmt, ("csv", "xlsx", "jsonl"))
    redactor = Redactor(configured_secrets(settings), system_keys={"reason", "explanation", "last_error"})
    rows = (redactor.row(r) for r in reporting.queue_rows(db, list(statuses) or None))
    path = Path(out) if out else _default_path("queue", fmt)
    meta = {"filters": {"status": list(statuses)}, "analysis_run": _analysis_meta(db, [])}
    return _finish(db, "queue", fmt, path, QUEUE_COLUMNS, rows, meta, title="queue", progress=progress,
                   settings=settings)


def export_actions(
    db: sqlite_utils.Database,
    settings: Settings,
    fmt: str = "csv",
    out: str | Path | None = None,
    since: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """The audit log (who approved, edited, sent what, when) for audits."""
    _check_format(fmt, ("csv", "xlsx", "jsonl"))
    redactor = Redactor(configured_secrets(settings), system_keys={"detail"})

    def rows() -> Iterable[dict[str, Any]]:
        for r in reporting.audit_rows(db, since):
            r = {**r, "detail": reporting.loads(r["detail"], r["detail"])}
            yield redactor.row(r)

    path = Path(out) if out else _default_path("actions", fmt)
    meta = {"filters": {"since": since}, "analysis_run": _analysis_meta(db, [])}
    return _finish(db, "actions", fmt, path, ACTION_COLUMNS, rows(), meta, title="actions", progress=progress,
                   settings=settings)
