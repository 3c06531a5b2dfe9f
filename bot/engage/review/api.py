"""The JSON API the page (and scripts) use: read the queue, and decide on it.

Every route names the right it needs (``need``); the database is the
request's own connection (``Db``). Decisions are recorded under the deciding
account's name; the ``by`` a client sends counts only for token sign-in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from config import Settings
from storage import engagement as store

from bot.engage import queue_ops
from bot.engage.review import cards
from bot.engage.review.auth import Who, need
from bot.engage.review.state import Db, State
from bot.errors import HuaxiangError
from bot.i18n import catalogue

# Queue ids are SQLite INTEGERs: a larger number can name no item and must be
# a 422, not an OverflowError (500) from the driver.
ItemId = Annotated[int, Field(ge=1, le=2**63 - 1)]
KINDS = ["reply", "repost", "group_reply", "follow"]

router = APIRouter()
report_router = APIRouter()


class IdsBody(BaseModel):
    ids: list[ItemId] = Field(..., min_length=1, max_length=1000, description="queue item ids")
    by: str = Field("", max_length=200, description="the reviewer's name (token sign-in only; accounts use their own)")
    reason: str = Field("", max_length=2000, description="why (for rejections)")


class EditBody(BaseModel):
    text: str = Field(..., max_length=20000, description="the new draft text")
    by: str = Field("", max_length=200, description="the reviewer's name (token sign-in only)")


class ByBody(BaseModel):
    by: str = Field("", max_length=200, description="the reviewer's name (token sign-in only)")


class ChangeOut(BaseModel):
    item_id: int
    ok: bool
    message: str
    status: str | None = None        # the item's status afterwards (the page words it in its own language)
    code: str = ""                   # why it was refused: message catalogue key err.<code>
    values: dict[str, str] = {}


def _local_day_bound(day: str | None, tz: tzinfo, end: bool) -> str | None:
    """A YYYY-MM-DD typed on the page, in the campaign's zone, as a UTC ISO bound (``end``: the next midnight)."""
    if not day:
        return None
    start = datetime.fromisoformat(day).replace(tzinfo=tz)
    return (start + timedelta(days=1 if end else 0)).astimezone(timezone.utc).isoformat()


def _card(db: sqlite3.Connection, row: dict[str, Any], settings: Settings, tz: tzinfo, w: Who) -> dict[str, Any]:
    first = queue_ops.first_approver(db, row["id"]) if settings.review.second_approval else None
    return cards.card(db, row, settings, tz, set(w.rights), first)


# -- reading ------------------------------------------------------------------------

@router.get("/api/session", summary="Who is signed in, CSRF token, messages and filter choices")
def session(st: State, db: Db, w: Who = Depends(need("read"))) -> dict[str, Any]:
    e, lang = st.settings.engagement, st.lang
    return {"csrf": w.csrf, "user": {"name": w.name, "role": w.role, "rights": sorted(w.rights)},
            "accounts": w.accounts_mode, "language": lang, "messages": catalogue(lang),
            "timezone": e.timezone, "statuses": list(store.ALL_STATUSES), "kinds": KINDS,
            "audiences": store.audience_names(db), "max_length": e.max_length, "send_mode": e.send_mode,
            "undo_seconds": st.settings.review.undo_seconds, "second_approval": st.settings.review.second_approval}


@router.get("/api/counts", summary="Items per status", dependencies=[Depends(need("read"))])
def counts(db: Db) -> dict[str, int]:
    return store.queue_counts(db)


@router.get("/api/items", summary="Queue items with post, profile, context and allowed actions "
                                       "(X-Total-Count: items matching the filters)")
def items(response: Response, st: State, db: Db, status: str | None = None, audience: str | None = None,
          kind: str | None = None, limit: int = Query(500, ge=1, le=5000), offset: int = Query(0, ge=0, le=10**9),
          sort: str = Query("audience", pattern="^(audience|score|time)$"),
          q: str | None = Query(None, max_length=200),
          date_from: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
          date_to: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
          w: Who = Depends(need("read"))) -> list[dict[str, Any]]:
    try:
        since, until = _local_day_bound(date_from, st.tz, False), _local_day_bound(date_to, st.tz, True)
    except ValueError:
        raise HTTPException(status_code=422, detail="dates are YYYY-MM-DD") from None
    filters = dict(status=status or None, audience=audience or None, kind=kind or None)
    rows = store.list_items(db, **filters, limit=limit, offset=offset, sort=sort, search=q or None,
                            since=since, until=until)
    total = store.count_items(db, **filters, search=q or None, since=since, until=until)
    response.headers["X-Total-Count"] = str(total)
    return [_card(db, r, st.settings, st.tz, w) for r in rows]


@router.get("/api/items/{item_id}", summary="One item with its context, audit history, send log and outcomes")
def item(st: State, db: Db, item_id: int = PathParam(..., ge=1, le=2**63 - 1),
         w: Who = Depends(need("read"))) -> dict[str, Any]:
    detail = store.item_detail(db, item_id)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"queue item {item_id} does not exist")
    return {"item": _card(db, detail, st.settings, st.tz, w), "audit": store.audit_for(db, item_id),
            "send_log": store.send_log_for(db, item_id), "outcomes": store.outcomes_for(db, item_id)}


@report_router.get("/report", summary="The campaign report (self-contained HTML)", dependencies=[Depends(need("read"))],
                   response_class=HTMLResponse)
def report(st: State, db: Db, lang_param: str | None = Query(None, alias="lang", pattern="^(zh|en)$")) -> HTMLResponse:
    return HTMLResponse(st.report(db, st.settings, lang=lang_param))


# -- deciding -----------------------------------------------------------------------

def _decide(db: sqlite3.Connection, fn: Callable[[], Any]) -> Any:
    """Run one decision: a refusal is a 400 naming its message code; each change reports the item's new status."""
    try:
        out = fn()
    except HuaxiangError as exc:
        code = getattr(exc, "code", "")
        values = json.dumps({k: str(v) for k, v in getattr(exc, "values", {}).items()})   # ASCII-escaped
        raise HTTPException(status_code=400, detail=str(exc),
                            headers={"X-Error-Code": code, "X-Error-Values": values} if code else None) from None
    if isinstance(out, list):
        for change in out:
            found = store.get_item(db, change["item_id"]) if change["ok"] else None
            change["status"] = found.status if found is not None else None
    return out


@router.post("/api/items/approve", summary="Approve items (approvers)", response_model=list[ChangeOut])
def approve(body: IdsBody, st: State, db: Db, w: Who = Depends(need("approve"))) -> list[dict[str, Any]]:
    return _decide(db, lambda: [c.__dict__ for c in queue_ops.approve(
        db, body.ids, w.actor(body.by), retry_failed=False, second_approval=st.settings.review.second_approval)])


@router.post("/api/items/reject", summary="Reject items (editors and approvers)", response_model=list[ChangeOut])
def reject(body: IdsBody, db: Db, w: Who = Depends(need("reject"))) -> list[dict[str, Any]]:
    return _decide(db, lambda: [c.__dict__ for c in queue_ops.reject(db, body.ids, w.actor(body.by), body.reason)])


@router.post("/api/items/done", summary="Follow suggestions carried out by hand", response_model=list[ChangeOut])
def done(body: IdsBody, db: Db, w: Who = Depends(need("todo"))) -> list[dict[str, Any]]:
    return _decide(db, lambda: [c.__dict__ for c in queue_ops.settle_follow(db, body.ids, w.actor(body.by), True)])


@router.post("/api/items/dismiss", summary="Follow suggestions decided against", response_model=list[ChangeOut])
def dismiss(body: IdsBody, db: Db, w: Who = Depends(need("todo"))) -> list[dict[str, Any]]:
    return _decide(db, lambda: [c.__dict__ for c in queue_ops.settle_follow(db, body.ids, w.actor(body.by), False)])


@router.post("/api/items/{item_id}/edit", summary="Change a draft (an approved item returns to pending)")
def edit(st: State, db: Db, item_id: int = PathParam(..., ge=1, le=2**63 - 1), body: EditBody = Body(...),
         w: Who = Depends(need("edit"))) -> dict[str, Any]:
    _decide(db, lambda: queue_ops.edit(db, item_id, body.text, w.actor(body.by), st.settings))
    return store.item_detail(db, item_id) or {}


@router.post("/api/items/{item_id}/undo", summary="Take back your last decision on an item (for a few seconds)")
def undo(st: State, db: Db, item_id: int = PathParam(..., ge=1, le=2**63 - 1), body: ByBody = Body(ByBody()),
         w: Who = Depends(need("undo"))) -> dict[str, Any]:
    _decide(db, lambda: queue_ops.undo(db, item_id, w.actor(body.by), st.settings.review.undo_seconds))
    return store.item_detail(db, item_id) or {}
