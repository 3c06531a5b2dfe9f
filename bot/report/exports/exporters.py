"""What each export holds, and the one path every export takes to disk.

Every export goes: read rows (storage.reporting) -> redact secrets ->
pseudonymise if asked -> write the file atomically -> write the sidecar ->
record it in the export log. Raw platform payloads are never exported.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


from config import Settings
from storage import reporting
from config.times import UTC, parse_stored, to_stored, utcnow
from storage.db import database_path
from bot.errors import HuaxiangError
from bot.find.sources import profile_link
from bot.report.exports.pseudonym import Pseudonymiser, load_pseudonymiser
from config import configured_secrets
from bot.report.exports.redact import Redactor
from bot.report.exports.sidecar import file_sha256, write_sidecar
from bot.report.exports.writers import EXTENSIONS, FORMATS, Column, is_stdout, write_table
from bot.report.shapes import labels

log = logging.getLogger(__name__)

Progress = Callable[[int], None]

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
    path: Path                # Path("-") for standard output
    sidecar: Path | None      # None for standard output (nothing to sit beside)
    rows: int
    notes: list[str] = field(default_factory=list)


_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")


def parse_since(text: str, now: datetime | None = None) -> str:
    """``30d``, ``12h``, ``2w``, ``90m``, a date ``2026-11-01`` or a full ISO time -> ISO 8601 (UTC if no offset)."""
    now = now or datetime.now(UTC)
    m = _RELATIVE.match(text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
        return to_stored(now - delta)
    when = parse_stored(text)
    if when is None:
        raise HuaxiangError(f"--active-since/--since: cannot read {text!r}; use 30d, 12h, 2026-11-01 or 2026-11-01T08:00+08:00")
    return when.isoformat(timespec="seconds")


def _db_file(db: sqlite3.Connection) -> Path:
    """Where the pseudonym key sits beside the database (an in-memory one keeps it beside huaxiang.db)."""
    return Path(database_path(db) or "huaxiang.db")


def _default_path(name: str, fmt: str) -> Path:
    return Path(f"{name}.{EXTENSIONS[fmt]}")


def _check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> None:
    if fmt not in allowed:
        raise HuaxiangError(f"unknown format {fmt!r}; choose from {', '.join(allowed)}")


def _analysis_meta(db: sqlite3.Connection, run_ids: Sequence[int]) -> dict[str, Any] | None:
    run = reporting.analysis_run(db, max(run_ids)) if run_ids else reporting.analysis_run(db)
    if run is None:
        return None
    if len(run_ids) > 1:
        run = {**run, "membership_runs": list(run_ids)}
    return run


def _finish(
    db: sqlite3.Connection,
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
    raw_csv: bool = False,
    settings: Settings | None = None,
) -> ExportResult:
    if progress is not None:
        rows = _counting(rows, progress)
    try:
        stats = write_table(fmt, path, columns, rows, title=title, raw_csv=raw_csv, settings=settings)
    except BrokenPipeError:
        raise                      # `-o - | head`: the reader has all it wanted
    except OSError as exc:
        raise HuaxiangError(f"{path}: cannot write ({exc.strerror or exc})") from None
    run = meta.get("analysis_run")
    if is_stdout(path):
        _record(db, what, fmt, "-", stats.rows, meta.get("filters", {}), subject=subject,
                analysis_run_id=(run or {}).get("id"), pseudonymised=pseudonymised)
        for note in stats.notes:
            log.warning("standard output: %s", note)
        return ExportResult(what, fmt, Path("-"), None, stats.rows, stats.notes)
    digest = file_sha256(path)
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
    _record(db, what, fmt, str(Path(os.path.realpath(path))), stats.rows, meta.get("filters", {}), subject=subject,
            analysis_run_id=(run or {}).get("id"), pseudonymised=pseudonymised, sha256=digest)
    for note in stats.notes:
        log.warning("%s: %s", path, note)
    return ExportResult(what, fmt, path, sidecar, stats.rows, stats.notes)


def _record(db: sqlite3.Connection, *args: Any, **kw: Any) -> None:
    """The export log entry; a read-only database can still be exported from."""
    try:
        reporting.record_export(db, *args, **kw)
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            raise
        log.warning("the database is read-only: this export is not recorded in its export log")


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
    # Two different numbers, named so nobody mixes them up: how well the user fits this audience
    # (membership_score, the cluster fit) and how relevant they are to a seeded target (relevance, see
    # `export prospects`), with the target it is for.
    Column("membership_score", "membership_score", "number"),
    Column("relevance", "relevance", "number"),
    Column("relevance_target", "relevance_target"),
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
    # Issue 14: what tells a brand or media account from a person, and the profile details.
    Column("account_type", "account_type"),
    Column("followers_at_least", "followers_at_least", "number"),
    Column("ip_location", "ip_location"),
    Column("education", "education"),
    Column("company", "company"),
    Column("birthday", "birthday"),
    Column("registered_at", "registered_at"),
    Column("is_bot", "is_bot", "number"),
]
# Dropped when pseudonymising: they name or point at the person.
IDENTIFYING = {"name", "profile_url", "verified_reason", "bio", "education", "company", "birthday"}

# Weibo's verified_type: who stands behind the account.
_ACCOUNT_TYPES = {0: "个人认证 (orange V)", 1: "政府 (blue V)", 2: "企业 (blue V)", 3: "媒体 (blue V)",
                  4: "校园 (blue V)", 5: "网站 (blue V)", 6: "应用 (blue V)", 7: "机构 (blue V)",
                  8: "待审企业", 200: "达人", 220: "达人", 400: "已故"}


def account_type(verified_type: Any, verified: Any = None, is_bot: Any = None) -> str:
    """A marketer's label for an account: person, personal V, brand/media/government (blue V), bot."""
    if is_bot:
        return "bot"
    if isinstance(verified_type, int) and verified_type in _ACCOUNT_TYPES:
        return _ACCOUNT_TYPES[verified_type]
    if isinstance(verified_type, int) and verified_type < 0:
        return "个人"
    if verified:
        return "认证"
    return ""


def followers_floor(row: dict[str, Any]) -> int | None:
    """The followers count when it is only a lower bound ("100万+"), else None."""
    floor = reporting.loads(row.get("counts_floor"), []) if row.get("counts_floor") else []
    return row.get("followers") if "followers" in floor else None


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
    db: sqlite3.Connection,
    settings: Settings,
    ref: str,
    fmt: str = "csv",
    out: str | Path | None = None,
    filters: AudienceFilters | None = None,
    pseudonymise: bool = False,
    progress: Progress | None = None,
    raw_csv: bool = False,
) -> ExportResult:
    """One audience's members with profile fields, tier, membership score, target relevance, top keywords
    and profile link."""
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
            row["account_type"] = account_type(m.get("verified_type"), m.get("verified"), m.get("is_bot"))
            row["followers_at_least"] = followers_floor(m)
            own = labels(reporting.loads(m.get("user_keywords"), []))[:8]
            row["top_keywords"] = own or member_keywords(keywords, texts.get(m["user_row"], []))
            row["profile_url"] = profile_link(m["platform"], m["uid"], row.get("profile_url")) or row.get("profile_url")
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
                   raw_csv=raw_csv, settings=settings)


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
                      Column("membership_score", "membership_score", "number")]


def export_memberships(
    db: sqlite3.Connection,
    settings: Settings,
    fmt: str = "csv",
    out: str | Path | None = None,
    pseudonymise: bool = False,
    progress: Progress | None = None,
    raw_csv: bool = False,
) -> ExportResult:
    """``user_id,audience_id,membership_score`` with user_id as imported (the contract benchmarks rely on).
    Users who fit no audience (unassigned) have no membership and no row."""
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
                   pseudonymised=pseudo is not None, progress=progress, raw_csv=raw_csv, settings=settings)


# ---------------------------------------------------------------- queue and actions

QUEUE_COLUMNS = [
    Column("id", "id", "number"), Column("status", "status"), Column("kind", "kind"), Column("platform", "platform"),
    Column("source", "source"), Column("audience_id", "audience_id", "number"), Column("audience", "audience"),
    Column("target_uid", "target_uid"), Column("target_name", "target_name"), Column("target_url", "target_url"),
    Column("post_pid", "post_pid"), Column("post_url", "post_url"), Column("post_text", "post_text"),
    Column("template", "template"), Column("variant", "variant", "number"), Column("draft", "draft"),
    Column("target", "target"), Column("target_relevance", "target_relevance", "number"),
    Column("draft_why", "draft_why"), Column("draft_reason", "draft_reason", "json"),
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


def _with_draft_why(row: dict, lang: str = "zh") -> dict:
    """The draft's reason as a sentence beside its JSON (issue 13's columns), and the
    explanation and reason written in ``lang`` from the stored facts (old rows keep their text)."""
    from bot.engage import explain
    from bot.engage.drafting.reason import parse

    facts = row.get("explanation_facts")
    return {**row, "draft_why": explain.draft_why(row.get("draft_reason"), lang),
            "draft_reason": parse(row.get("draft_reason")) or None,
            "explanation": explain.explanation(facts, lang, row.get("explanation")),
            "reason": explain.reason(facts, lang, row.get("reason"))}


def export_queue(
    db: sqlite3.Connection,
    settings: Settings,
    fmt: str = "csv",
    out: str | Path | None = None,
    statuses: Sequence[str] = (),
    progress: Progress | None = None,
    raw_csv: bool = False,
) -> ExportResult:
    """The manual worklist: each proposed action with the post link, the target and the draft."""
    _check_format(fmt, ("csv", "xlsx", "jsonl"))
    redactor = Redactor(configured_secrets(settings), system_keys={"reason", "explanation", "last_error"})
    from bot.i18n import language

    lang = language(settings)
    rows = (redactor.row(_with_draft_why(r, lang)) for r in reporting.queue_rows(db, list(statuses) or None))
    path = Path(out) if out else _default_path("queue", fmt)
    meta = {"filters": {"status": list(statuses)}, "analysis_run": _analysis_meta(db, [])}
    return _finish(db, "queue", fmt, path, QUEUE_COLUMNS, rows, meta, title="queue", progress=progress,
                   raw_csv=raw_csv, settings=settings)


def export_actions(
    db: sqlite3.Connection,
    settings: Settings,
    fmt: str = "csv",
    out: str | Path | None = None,
    since: str | None = None,
    progress: Progress | None = None,
    raw_csv: bool = False,
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
                   raw_csv=raw_csv, settings=settings)


# ---------------------------------------------------------------- prospects

PROSPECT_COLUMNS = [
    Column("rank", "rank", "number"), Column("user_id", "user_id"), Column("name", "name"),
    Column("relevance", "relevance", "number"), Column("why", "why"),
    Column("audience_id", "audience_id", "number"), Column("audience", "audience"), Column("tier", "tier"),
    Column("membership_score", "membership_score", "number"), Column("profile_url", "profile_url"),
    Column("platform", "platform"), Column("followers", "followers", "number"), Column("last_seen", "last_seen"),
]


def export_prospects(
    db: sqlite3.Connection,
    settings: Settings,
    target: str,
    fmt: str = "csv",
    out: str | Path | None = None,
    min_relevance: float | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    raw_csv: bool = False,
) -> ExportResult:
    """Every scored user of one seeded target, most relevant first, with why
    (the posts and words that matched), their audience (empty when they fit
    none) and tier: "who are my prospects" as a file."""
    _check_format(fmt, ("csv", "xlsx", "jsonl"))
    if limit is not None and limit < 1:
        raise HuaxiangError("--limit must be 1 or more")
    known = reporting.target_names(db)
    if target not in known:
        names = [a.name for a in settings.audiences]
        hint = ", ".join(known or names) or "none configured ([[audiences]] in the config)"
        raise HuaxiangError(f"no relevance stored for target {target!r} (targets: {hint}; run `huaxiang analyze`"
                            " after adding one)")
    redactor = Redactor(configured_secrets(settings), system_keys={"why"})
    from bot.engage.explain import relevance
    from bot.i18n import language

    lang = language(settings)

    def rows() -> Iterable[dict[str, Any]]:
        for rank, r in enumerate(reporting.prospect_rows(db, target, min_relevance, limit), start=1):
            row = {**r, "rank": rank, "why": relevance(r.get("why_facts"), lang, r.get("why"))}
            row["profile_url"] = profile_link(r["platform"], r["user_id"], row.get("profile_url")) or row.get("profile_url")
            yield redactor.row(row)

    path = Path(out) if out else _default_path("prospects-" + re.sub(r"[^\w-]+", "_", target), fmt)
    meta = {"target": target, "filters": {"min_relevance": min_relevance, "limit": limit},
            "analysis_run": _analysis_meta(db, reporting.relevance_run_ids(db, target))}
    return _finish(db, "prospects", fmt, path, PROSPECT_COLUMNS, rows(), meta, title=f"prospects {target}",
                   subject=target, progress=progress, raw_csv=raw_csv, settings=settings)
