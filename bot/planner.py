"""``huaxiang plan``: propose replies, reposts, group replies and follow
suggestions for a person to review.

Why the planner never approves: its job is to make the reviewer fast and the
queue good (scored, explained, scheduled, drafted), not to decide. Every
proposal passes ``bot.policy.plan_violations`` for the exact time it is
scheduled at, and its dedupe key (one action per post, one follow
suggestion per user) makes running ``plan`` twice add nothing.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from config import Settings
from storage import engagement as store
from storage.db import transaction

from bot import drafts, outcomes, policy, queue_ops

log = logging.getLogger(__name__)

TIER_WEIGHT = {"leader": 1.0, "engaged": 0.7, "potential": 0.4}
MAX_SLOT_STEPS = 400


@dataclass
class PlanSummary:
    candidates: int = 0
    created: int = 0
    follow_suggestions: int = 0
    already_planned: int = 0
    no_template: int = 0
    no_slot: int = 0
    expired: int = 0
    skipped: Counter = field(default_factory=Counter)   # rule -> candidates it stopped

    def as_counts(self) -> dict[str, int]:
        out = {"candidates": self.candidates, "planned": self.created, "follow_suggestions": self.follow_suggestions,
               "already_planned": self.already_planned, "no_template": self.no_template, "no_slot": self.no_slot,
               "expired": self.expired}
        out.update({f"skipped_{k}": v for k, v in sorted(self.skipped.items())})
        return out


@dataclass
class Candidate:
    row: dict
    kind_options: tuple[str, ...]
    audience_names: set[str]
    audience_id: int | None
    audience: str
    tier: str | None
    relevance: float
    score: float = 0.0
    parts: dict = field(default_factory=dict)


def _priority(settings: Settings, names: set[str]) -> int:
    return max((a.priority for a in settings.audiences if a.name in names), default=1)


def _score(settings: Settings, c: Candidate, now: datetime, rate: tuple[int, int]) -> None:
    """Relevance, tier, influence, freshness, engagement and learned response, weighted."""
    r = c.row
    created = policy.parse_time(r["created_at"]) or now
    age_h = max(0.0, (now - created).total_seconds() / 3600)
    followers = r.get("followers") or 0
    interactions = (r.get("likes") or 0) + 2 * (r.get("comments") or 0) + 2 * (r.get("reposts") or 0)
    sent, responded = rate
    influence = r.get("stat_influence")
    parts = {
        "relevance": min(1.0, max(0.0, c.relevance)),
        "tier": TIER_WEIGHT.get(c.tier or "", 0.3),
        # the analysis's percentile when there is one, else a log scale of followers
        "influence": float(influence) if influence is not None else min(1.0, math.log10(1 + followers) / 6),
        "freshness": 0.5 ** (age_h / 24),
        "engagement": min(1.0, math.log10(1 + interactions) / 3),
        "response": (1 + responded) / (2 + sent),
    }
    weights = {"relevance": 0.30, "tier": 0.20, "influence": 0.15, "freshness": 0.15, "engagement": 0.10, "response": 0.10}
    base = sum(weights[k] * parts[k] for k in weights)
    boost = 1 + 0.1 * (_priority(settings, c.audience_names) - 1)
    c.score = round(base * boost, 4)
    c.parts = {**parts, "age_h": age_h, "followers": followers, "interactions": interactions,
               "sent": sent, "responded": responded}


def _explain(c: Candidate, draft: drafts.Draft | None, when: datetime | None, settings: Settings,
             active: list[int] | None) -> str:
    p = c.parts
    age = f"{p['age_h']:.0f} h" if p["age_h"] < 48 else f"{p['age_h'] / 24:.0f} days"
    why_relevant = c.row.get("relevance_explanation")
    who = (f"{c.tier or 'member'} of {c.audience} (relevance {c.relevance:.2f}"
           + (f": {why_relevant}" if why_relevant else "") + ")") if c.audience_id is not None \
        else f"active thread in group {c.audience}"
    sent, resp = p["sent"], p["responded"]
    learned = f"this audience answered {resp}/{sent} so far" if sent else "no responses learned yet"
    s = (f"Score {c.score:.2f}: {who}, {p['followers']} followers; posted {age} ago with "
         f"{p['interactions']} weighted interactions; {learned}.")
    if draft is not None:
        s += f" Draft: template {draft.template!r} variant {draft.variant + 1}."
    if when is not None:
        local = when.astimezone(policy.local_zone(settings))
        s += f" Scheduled {local:%m-%d %H:%M}" + (" in their usual active hours." if active and local.hour in active else ".")
    return s


def active_hours(settings: Settings, times: list[str]) -> list[int] | None:
    """The local hours covering most of a user's posts (None with too little data)."""
    zone = policy.local_zone(settings)
    hours = Counter()
    for t in times:
        dt = policy.parse_time(t)
        if dt is not None:
            hours[dt.astimezone(zone).hour] += 1
    total = sum(hours.values())
    if total < 3:
        return None
    chosen, covered = [], 0
    for hour, n in hours.most_common():
        chosen.append(hour)
        covered += n
        if covered >= 0.6 * total:
            break
    return sorted(chosen)


def hours_from_histogram(value: str | None) -> list[int] | None:
    """Active hours from the analysis's 24 per-hour post counts (already in the campaign's zone)."""
    try:
        counts = json.loads(value or "[]")
    except ValueError:
        return None
    if not isinstance(counts, list) or len(counts) != 24 or not all(isinstance(n, (int, float)) for n in counts):
        return None
    total = sum(counts)
    if total < 3:
        return None
    chosen, covered = [], 0.0
    for hour in sorted(range(24), key=lambda h: (-counts[h], h)):
        chosen.append(hour)
        covered += counts[hour]
        if covered >= 0.6 * total:
            break
    return sorted(chosen)


def _next_active(settings: Settings, t: datetime, hours: list[int]) -> datetime | None:
    zone = policy.local_zone(settings)
    local = t.astimezone(zone)
    for step in range(1, 25):
        cand = (local + timedelta(hours=step)).replace(minute=0, second=0, microsecond=0)
        if cand.hour in hours:
            return cand.astimezone(timezone.utc)
    return None


def _find_slot(db, settings: Settings, action: policy.Action, start: datetime, hours: list[int] | None,
               expires: datetime | None) -> datetime | None:
    """The first time from ``start`` that quiet hours, caps and spacing allow,
    preferring the target's active hours when that costs less than a day."""
    t = start
    prefer = hours
    deadline = start + timedelta(days=1)
    for _ in range(MAX_SLOT_STEPS):
        if expires is not None and t > expires:
            return None
        t = policy.after_quiet_hours(settings, t)
        if prefer and t.astimezone(policy.local_zone(settings)).hour not in prefer:
            nxt = _next_active(settings, t, prefer)
            if nxt is not None and nxt <= deadline and (expires is None or nxt <= expires):
                t = nxt
                continue
            prefer = None  # no active hour fits soon enough: any allowed hour will do
        action.when = t
        waits = [v for v in (policy.rule_quiet_hours(settings, action),
                             policy.rule_daily_cap(db, settings, action, "plan"),
                             policy.rule_hourly_cap(db, settings, action, "plan"),
                             policy.rule_spacing(db, settings, action, "plan")) if v is not None]
        if not waits:
            return t
        t = max(v.retry_at or t + timedelta(minutes=5) for v in waits)
        if prefer and t > deadline:
            prefer = None
    return None


def _gather(db, settings: Settings, now: datetime) -> list[Candidate]:
    e = settings.engagement
    since = policy.iso(now - timedelta(days=e.max_post_age_days))
    targets = set(e.target_audiences)
    best: dict[int, Candidate] = {}
    for r in store.audience_candidates(db, since, e.target_tiers, e.min_relevance):
        # An audience answers to its edited name, its auto-name and the seeded target it matched,
        # so templates written for "健身人群" reach the cluster the analysis found for it.
        names = {n for n in (r["audience"], r["auto_name"], r.get("audience_target")) if n}
        if targets and not (names & targets):
            continue
        # Relevance to the seeded target this audience matches, else the user's best, else membership strength.
        rel = next((v for v in (r.get("target_relevance"), r.get("stat_relevance"), r["relevance"]) if v is not None), 0.0)
        c = Candidate(row=r, kind_options=("reply", "repost"), audience_names=names, audience_id=r["audience_id"],
                      audience=r["audience"], tier=r["tier"], relevance=float(rel))
        prev = best.get(r["post_id"])
        if prev is None or c.relevance * _priority(settings, names) > prev.relevance * _priority(settings, prev.audience_names):
            best[r["post_id"]] = c
    out = list(best.values())
    if any(t.kind == "group_reply" for t in e.templates):
        for r in store.group_candidates(db, since):
            if r["post_id"] in best:
                continue
            group = str(r["group_name"] or "")
            out.append(Candidate(row={**r, "audience_keywords": "[]"}, kind_options=("group_reply",),
                                 audience_names={group}, audience_id=None, audience=group, tier=None, relevance=0.5))
    return out


def run_plan(db, settings: Settings, now: datetime | None = None, rng: random.Random | None = None) -> PlanSummary:
    """Propose actions for recent posts by target audiences and in groups.

    Idempotent: candidates that already have an item are counted as
    ``already_planned`` and left alone.
    """
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    rng = rng or random.Random(int(now.timestamp()))
    e = settings.engagement
    summary = PlanSummary()
    summary.expired = queue_ops.expire_due(db, now)
    stats = store.variant_stats(db)
    audience_rates: dict[int | None, tuple[int, int]] = {}
    for (aud, _t, _v), (n, r) in stats.items():
        s = audience_rates.get(aud, (0, 0))
        audience_rates[aud] = (s[0] + n, s[1] + r)
    cands = _gather(db, settings, now)
    summary.candidates = len(cands)
    for c in cands:
        _score(settings, c, now, audience_rates.get(c.audience_id, (0, 0)))
    cands.sort(key=lambda c: (-c.score, c.row["post_id"]))
    source = e.send_source or ""
    follows_done: set[tuple[str, str]] = set()
    for c in cands:
        if summary.created >= e.max_items_per_plan:
            break
        r = c.row
        post_key = f"post:{r['platform']}:{r['pid']}"
        with transaction(db):
            if e.follow_suggestions and c.tier == "leader" and (r["platform"], r["uid"]) not in follows_done:
                follows_done.add((r["platform"], r["uid"]))
                if _suggest_follow(db, settings, c, now, source):
                    summary.follow_suggestions += 1
                    summary.created += 1
            if summary.created >= e.max_items_per_plan:
                break
            if store.count_post_items(db, r["post_id"], store.ALL_STATUSES):
                summary.already_planned += 1
                continue
            templates = drafts.templates_for(settings, c.audience_names, c.kind_options)
            ctx = drafts.context_for(r["text"], r.get("topics"), r.get("user_name"), c.audience, r.get("audience_keywords"))
            options = drafts.drafts_for(settings, templates, ctx)
            if not options:
                summary.no_template += 1
                continue
            ranked = outcomes.rank_drafts(options, stats, c.audience_id, rng)
            created = policy.parse_time(r["created_at"])
            expires = created + timedelta(days=e.max_post_age_days) if created else None
            action = policy.Action(kind=ranked[0].kind, platform=r["platform"], target_uid=r["uid"], post_id=r["post_id"],
                                   post_text=r["text"], text=ranked[0].text, when=now, source=source,
                                   post_created_at=r["created_at"], expires_at=policy.iso(expires) if expires else None,
                                   jitter_key=post_key)
            # Permanent rules first (they do not depend on the draft or the time).
            hard = [v for v in policy.plan_violations(db, settings, action)
                    if v.action == "cancel" and v.rule not in ("identical_text", "length")]
            if hard:
                summary.skipped[hard[0].rule] += 1
                continue
            hours = hours_from_histogram(r.get("stat_active_hours")) or \
                (active_hours(settings, store.user_post_times(db, r["user_id"])) if r.get("user_id") else None)
            when = _find_slot(db, settings, action, now, hours, expires)
            if when is None:
                summary.no_slot += 1
                continue
            chosen, last_problem = None, None
            for d in ranked:
                action.kind, action.text, action.when = d.kind, d.text, when
                problems = policy.plan_violations(db, settings, action)
                if not problems:
                    chosen = d
                    break
                last_problem = problems[0]
                if any(p.rule not in ("identical_text",) for p in problems):
                    break
            if chosen is None:
                summary.skipped[last_problem.rule if last_problem else "no_draft"] += 1
                continue
            at = policy.iso(now)
            item_id = store.insert_item(db, {
                "kind": chosen.kind, "status": "pending", "source": source, "platform": r["platform"],
                "post_id": r["post_id"], "target_user_id": r.get("user_id"), "audience_id": c.audience_id,
                "template": chosen.template, "variant": chosen.variant, "text": chosen.text, "score": c.score,
                "reason": _reason(c), "explanation": _explain(c, chosen, when, settings, hours),
                "scheduled_at": policy.iso(when), "expires_at": action.expires_at, "dedupe_key": post_key,
                "created_at": at, "updated_at": at, "target_uid": r["uid"], "post_pid": r["pid"],
                "text_key": policy.text_key(chosen.text),
            })
            if item_id is None:
                summary.already_planned += 1
                continue
            store.append_audit(db, at, queue_ops.PLANNER, "plan", item_id, None, "pending", None, chosen.text,
                               {"score": c.score, "template": chosen.template, "variant": chosen.variant})
            summary.created += 1
    log.info("planned: %s", summary.as_counts())
    return summary


def _reason(c: Candidate) -> str:
    if c.audience_id is None:
        return f"active thread in group {c.audience}"
    return f"{c.tier or 'member'} in {c.audience}"


def _suggest_follow(db, settings: Settings, c: Candidate, now: datetime, source: str) -> bool:
    """A follow is a note for a person (never sent); one per user, ever."""
    r = c.row
    action = policy.Action(kind="follow", platform=r["platform"], target_uid=r["uid"], post_id=None,
                           post_text=r["text"], text="", when=now, source=source)
    if policy.plan_violations(db, settings, action):
        return False
    at = policy.iso(now)
    item_id = store.insert_item(db, {
        "kind": "follow", "status": "pending", "source": source, "platform": r["platform"], "post_id": r["post_id"],
        "target_user_id": r.get("user_id"), "audience_id": c.audience_id, "text": "", "score": c.score,
        "reason": f"opinion leader in {c.audience}: follow by hand if they fit",
        "explanation": _explain(c, None, None, settings, None) + " Follows are never sent by the bot.",
        "dedupe_key": f"follow:{r['platform']}:{r['uid']}", "created_at": at, "updated_at": at,
        "target_uid": r["uid"], "post_pid": r["pid"],
    })
    if item_id is None:
        return False
    store.append_audit(db, at, queue_ops.PLANNER, "plan", item_id, None, "pending", None, "", {"kind": "follow"})
    return True
