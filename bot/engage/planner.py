"""``huaxiang plan``: propose replies, reposts, group replies and follow
suggestions for a person to review.

Why the planner never approves: its job is to make the reviewer fast and the
queue good (scored, explained, scheduled, drafted), not to decide. Every
proposal passes ``bot.engage.policy.plan_violations`` for the exact time it is
scheduled at, and its dedupe key (one action per post, one follow
suggestion per user) makes running ``plan`` twice add nothing.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from config import Settings
from config.times import parse_stored, to_stored
from storage import engagement as store
from storage.db import transaction

from bot.engage import drafts, policy, queue_ops
from bot.engage import explain
from bot.i18n import TIME_FORMAT
from bot.engage.drafting.compose import Composer, PostInfo, campaign_words, json_list

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
    reposts: int = 0
    queue_full: bool = False
    skipped: Counter = field(default_factory=Counter)   # rule -> candidates it stopped
    off_target: Counter = field(default_factory=Counter)  # cluster -> candidates below min_relevance to every target
    used: Counter = field(default_factory=Counter)        # (template, variant) -> drafts chosen this run

    def as_counts(self) -> dict[str, int]:
        out = {"candidates": self.candidates, "planned": self.created, "follow_suggestions": self.follow_suggestions,
               "already_planned": self.already_planned, "no_template": self.no_template, "no_slot": self.no_slot,
               "expired": self.expired, "reposts": self.reposts,
               "off_target": sum(self.off_target.values())}
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
    target: str | None = None              # the declared [[audiences]] target this action serves
    target_relevance: float | None = None  # the user's relevance to it (user_relevance.score)


def _priority(settings: Settings, names: set[str]) -> int:
    return max((a.priority for a in settings.audiences if a.name in names), default=1)


def _score(settings: Settings, c: Candidate, now: datetime, rate: tuple[int, int]) -> None:
    """Relevance, tier, influence, freshness, engagement and learned response, weighted."""
    r = c.row
    created = parse_stored(r["created_at"]) or now
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


def _facts(c: Candidate, draft: drafts.Draft | None, when: datetime | None, settings: Settings,
           active: list[int] | None, follow: bool = False) -> dict[str, Any]:
    """What the score explanation says, as data: ``bot.engage.explain`` writes
    the sentence when someone reads it, in the language they configured."""
    p = c.parts
    f: dict[str, Any] = {"v": explain.FACTS_VERSION, "score": c.score, "audience": c.audience, "tier": c.tier,
                         "relevance": round(c.relevance, 4), "followers": p["followers"],
                         "age_h": round(p["age_h"], 1), "interactions": p["interactions"],
                         "sent": p["sent"], "responded": p["responded"]}
    if c.audience_id is None:
        f["group"] = True
    rel_facts = explain.loads(c.row.get("relevance_facts"))
    if rel_facts:
        f["relevance_facts"] = rel_facts
    elif c.row.get("relevance_explanation"):
        f["relevance_why"] = c.row["relevance_explanation"]
    if c.target is not None and c.target_relevance is not None:
        f["target"], f["target_relevance"] = c.target, c.target_relevance
    if draft is not None:
        f["draft"] = {"template": draft.template, "variant": draft.variant, "reason": draft.reason or {}}
    if when is not None:
        local = when.astimezone(policy.local_zone(settings))
        f["scheduled"] = local.strftime(TIME_FORMAT)   # the one format every time a person reads has
        f["in_active_hours"] = bool(active and local.hour in active)
    if follow:
        f["follow"] = True
    return f


def active_hours(settings: Settings, times: list[str]) -> list[int] | None:
    """The local hours covering most of a user's posts (None with too little data)."""
    zone = policy.local_zone(settings)
    hours = Counter()
    for t in times:
        dt = parse_stored(t)
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


def _find_slot(db: sqlite3.Connection, settings: Settings, action: policy.Action, start: datetime,
               hours: list[int] | None, expires: datetime | None) -> datetime | None:
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


def _best_target(settings: Settings, rel: dict[str, tuple]) -> tuple[str | None, float, str | None, str | None]:
    """The declared target this user is most relevant to, weighted by its priority
    (name, relevance, its explanation and the facts it is written from)."""
    best: tuple[str | None, float, str | None, str | None] = (None, 0.0, None, None)
    for a in settings.audiences:
        score, why, facts = (tuple(rel.get(a.name, (0.0, None))) + (None,))[:3]
        if best[0] is None or score * a.priority > best[1] * _priority(settings, {best[0]}):
            best = (a.name, score, why, facts)
    return best


def _on_target(settings: Settings, c: Candidate, rel: dict[str, tuple[float, str | None]],
               summary: PlanSummary) -> bool:
    """With declared targets: only users whose relevance to one of them is at
    least min_relevance (the rest are reported per cluster, engaged only when
    the campaign opts in). Without: the membership score against min_relevance."""
    e = settings.engagement
    if not settings.audiences:
        c.target_relevance = c.relevance
        if c.relevance >= e.min_relevance:
            return True
        summary.off_target[c.audience] += 1
        return False
    target, score, why, facts = _best_target(settings, rel)
    c.target, c.target_relevance = target, round(score, 4)
    if why and not c.row.get("relevance_explanation"):
        c.row["relevance_explanation"] = why
        c.row["relevance_facts"] = facts
    if score >= e.min_relevance:
        c.relevance = score
        c.audience_names = c.audience_names | {target}
        return True
    summary.off_target[c.audience] += 1
    if e.engage_off_target:
        c.target = None
        return True
    return False


def _gather(db: sqlite3.Connection, settings: Settings, now: datetime, summary: PlanSummary) -> list[Candidate]:
    e = settings.engagement
    since = to_stored(now - timedelta(days=e.max_post_age_days))
    targets = set(e.target_audiences)
    best: dict[int, Candidate] = {}
    for r in store.audience_candidates(db, since, e.target_tiers, 0.0):
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
    rels = store.target_relevance(db, [c.row["user_id"] for c in out if c.row.get("user_id")])
    kept = [c for c in out if _on_target(settings, c, rels.get(c.row.get("user_id"), {}), summary)]
    return kept


AD_WORDS = re.compile(r"抽奖|转发.{0,4}送|优惠券?|折扣|代购|团购|私信.{0,4}(购|买|下单)|下单|链接在|点击链接|直播间|秒杀|包邮|广告|推广|http")


def _repost_worthy(settings: Settings, c: Candidate, reading, summary: PlanSummary) -> bool:
    """Strong content by a leader or engaged prospect of a target audience:
    enough interactions, something to say, not an ad, not a question (a
    question wants an answer, not amplification); and reposts stay at most
    ``repost_share`` of the run's actions (an account that only reposts looks like a bot)."""
    e = settings.engagement
    r = c.row
    if not e.reposts or "repost" not in c.kind_options or c.tier not in ("leader", "engaged"):
        return False
    actions = summary.created - summary.follow_suggestions
    if e.repost_share <= 0 or summary.reposts + 1 > max(1.0, e.repost_share * (actions + 1)):
        return False
    if c.audience_id is None or (settings.audiences and c.target is None):
        return False
    interactions = (r.get("likes") or 0) + 2 * ((r.get("comments") or 0) + (r.get("reposts") or 0))
    body = re.sub(r"#[^#]*#|\[[^\]]*\]|@\S+|\s", "", r.get("text") or "")
    return (interactions >= e.repost_min_interactions and len(body) >= 12
            and reading.kind in ("progress", "review", "share", "statement")
            and len(reading.phrases) >= 2 and not AD_WORDS.search(r.get("text") or ""))


def _composer(db: sqlite3.Connection, settings: Settings, cands: list[Candidate]) -> Composer:
    """The drafters for this run: phrase statistics over the candidate posts,
    the library (with sentence vectors when the analysis has them), the LLM if configured."""
    keywords: set[str] = set()
    for c in cands:
        keywords |= set(json_list(c.row.get("audience_keywords")))
    encoder = _library_encoder(settings) if settings.engagement.library else None
    llm = None
    if settings.drafting.drafter == "llm":
        from bot.engage.drafting.llm import LLMDrafter

        llm = LLMDrafter(settings)
    return Composer(settings, [c.row.get("text") or "" for c in cands], campaign_words(settings), encoder, llm,
                    prefer=keywords)


def _library_encoder(settings: Settings):
    """The sentence encoder the analysis uses, when installed and allowed (else words alone)."""
    if settings.analysis.encoder == "words":
        return None
    from nlp.encode import EncoderUnavailable, default_encoder

    try:
        return default_encoder()
    except EncoderUnavailable as exc:
        log.info("content library matched by words: %s", exc)
        return None


def _post_vectors(db: sqlite3.Connection, composer: Composer, cands: list[Candidate]) -> dict[int, Any]:
    """Stored sentence vectors of the candidate posts (the analysis embedded them)."""
    model = composer.vector_model
    if model is None:
        return {}
    from nlp.encode import from_blob
    from storage.tokens import text_hash
    from storage.vectors import load_vectors

    clean = store.post_clean_texts(db, [c.row["post_id"] for c in cands])
    keys = {pid: text_hash(t) for pid, t in clean.items()}
    blobs = load_vectors(db, model, keys.values())
    out = {}
    for pid, k in keys.items():
        if k in blobs:
            v = from_blob(blobs[k]).astype("float32")
            n = float((v @ v) ** 0.5) or 1.0
            out[pid] = v / n
    return out


def run_plan(db: sqlite3.Connection, settings: Settings, now: datetime | None = None,
             rng: random.Random | None = None) -> PlanSummary:
    """Propose actions for recent posts by target audiences and in groups.

    Idempotent: candidates that already have an item are counted as
    ``already_planned`` and left alone, and the run only tops the review
    queue up to ``max_items_per_plan`` pending items, so running it twice
    with nothing new adds nothing.
    """
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    rng = rng or random.Random(int(now.timestamp()))
    e = settings.engagement
    summary = PlanSummary()
    summary.expired = queue_ops.expire_due(db, now)
    budget = e.max_items_per_plan - store.pending_count(db)
    if budget <= 0:
        summary.queue_full = True
        return summary
    stats = store.variant_stats(db)
    audience_rates: dict[int | None, tuple[int, int]] = {}
    for (aud, _t, _v), (n, r) in stats.items():
        s = audience_rates.get(aud, (0, 0))
        audience_rates[aud] = (s[0] + n, s[1] + r)
    cands = _gather(db, settings, now, summary)
    summary.candidates = len(cands)
    for c in cands:
        _score(settings, c, now, audience_rates.get(c.audience_id, (0, 0)))
    cands.sort(key=lambda c: (-c.score, c.row["post_id"]))
    fresh = [c for c in cands if not store.count_post_items(db, c.row["post_id"], store.ALL_STATUSES)]
    composer = _composer(db, settings, cands)
    vectors = _post_vectors(db, composer, fresh)
    follows_done: set[tuple[str, str]] = set()
    try:
        for c in cands:
            if summary.created >= budget:
                break
            with transaction(db):
                _plan_one(db, settings, c, now, rng, stats, composer, vectors, follows_done, summary, budget)
    finally:
        composer.close()
    log.info("planned: %s", summary.as_counts())
    return summary


def _plan_one(db: sqlite3.Connection, settings: Settings, c: Candidate, now: datetime, rng: random.Random, stats,
              composer: Composer, vectors: dict, follows_done: set, summary: PlanSummary, budget: int) -> None:
    """One candidate: a follow suggestion for a leader, then one reply or repost."""
    e = settings.engagement
    r = c.row
    source = e.send_source or ""
    if e.follow_suggestions and c.tier == "leader" and (r["platform"], r["uid"]) not in follows_done:
        follows_done.add((r["platform"], r["uid"]))
        if _suggest_follow(db, settings, c, now, source):
            summary.follow_suggestions += 1
            summary.created += 1
    if summary.created >= budget:
        return
    if store.count_post_items(db, r["post_id"], store.ALL_STATUSES):
        summary.already_planned += 1
        return
    reading = composer.read(r.get("text") or "", r.get("topics"))
    kind = "repost" if _repost_worthy(settings, c, reading, summary) else c.kind_options[0]
    info = PostInfo(text=r.get("text") or "", topics_json=r.get("topics"), user_name=r.get("user_name"),
                    audience=c.audience, audience_names=c.audience_names, audience_keywords=r.get("audience_keywords"),
                    tier=c.tier, target=c.target, vector=vectors.get(r["post_id"]))
    options = composer.options(info, kind)
    if not options and kind == "repost":
        kind = "reply"
        options = composer.options(info, kind)
    if not options:
        summary.no_template += 1
        return
    chosen, when, hours = _choose(db, settings, c, now, rng, stats, options, summary)
    if chosen is None:
        return
    _insert(db, settings, c, chosen, when, hours, now, summary)


def _choose(db: sqlite3.Connection, settings: Settings, c: Candidate, now: datetime, rng: random.Random, stats,
            options, summary: PlanSummary):
    """The best-ranked draft that every rule allows, and its slot."""
    e = settings.engagement
    r = c.row
    # The model's draft, when [drafting] asks for one, is tried first; the rest by learned response.
    ranked = [d for d in options if d.template == "llm"] + \
        drafts.rank_drafts([d for d in options if d.template != "llm"], stats, c.audience_id, rng, summary.used)
    created = parse_stored(r["created_at"])
    expires = created + timedelta(days=e.max_post_age_days) if created else None
    action = policy.Action(kind=ranked[0].kind, platform=r["platform"], target_uid=r["uid"], post_id=r["post_id"],
                           post_text=r["text"], text=ranked[0].text, when=now, source=e.send_source or "",
                           post_created_at=r["created_at"], expires_at=to_stored(expires) if expires else None,
                           jitter_key=f"post:{r['platform']}:{r['pid']}")
    # Permanent rules first (they do not depend on the draft or the time).
    hard = [v for v in policy.plan_violations(db, settings, action)
            if v.action == "cancel" and v.rule not in ("identical_text", "length")]
    if hard:
        summary.skipped[hard[0].rule] += 1
        return None, None, None
    hours = hours_from_histogram(r.get("stat_active_hours")) or \
        (active_hours(settings, store.user_post_times(db, r["user_id"])) if r.get("user_id") else None)
    when = _find_slot(db, settings, action, now, hours, expires)
    if when is None:
        summary.no_slot += 1
        return None, None, None
    last_problem = None
    for d in ranked:
        action.kind, action.text, action.when = d.kind, d.text, when
        problems = policy.plan_violations(db, settings, action)
        if not problems:
            c.row["_expires_at"] = action.expires_at
            return d, when, hours
        last_problem = problems[0]
        if any(p.rule not in ("identical_text",) for p in problems):
            break
    summary.skipped[last_problem.rule if last_problem else "no_draft"] += 1
    return None, None, None


def _insert(db: sqlite3.Connection, settings: Settings, c: Candidate, chosen: drafts.Draft, when: datetime, hours,
            now: datetime, summary: PlanSummary) -> None:
    r = c.row
    at = to_stored(now)
    facts = _facts(c, chosen, when, settings, hours)
    item_id = store.insert_item(db, {
        "kind": chosen.kind, "status": "pending", "source": settings.engagement.send_source or "",
        "platform": r["platform"], "post_id": r["post_id"], "target_user_id": r.get("user_id"),
        "audience_id": c.audience_id, "template": chosen.template, "variant": chosen.variant, "text": chosen.text,
        "score": c.score, "reason": explain.reason(facts, "en"), "explanation": explain.explanation(facts, "en"),
        "explanation_facts": json.dumps(facts, ensure_ascii=False, sort_keys=True),
        "scheduled_at": to_stored(when), "expires_at": r.get("_expires_at"),
        "dedupe_key": f"post:{r['platform']}:{r['pid']}", "created_at": at, "updated_at": at, "target_uid": r["uid"],
        "post_pid": r["pid"], "text_key": policy.text_key(chosen.text), "target": c.target,
        "target_relevance": c.target_relevance,
        "draft_reason": json.dumps(chosen.reason, ensure_ascii=False, sort_keys=True) if chosen.reason else None,
    })
    if item_id is None:
        summary.already_planned += 1
        return
    store.append_audit(db, at, queue_ops.PLANNER, "plan", item_id, None, "pending", None, chosen.text,
                       {"score": c.score, "template": chosen.template, "variant": chosen.variant})
    summary.created += 1
    summary.reposts += chosen.kind == "repost"
    summary.used[(chosen.template, chosen.variant)] += 1



def _suggest_follow(db: sqlite3.Connection, settings: Settings, c: Candidate, now: datetime, source: str) -> bool:
    """A follow is a note for a person (never sent); one per user, ever."""
    r = c.row
    action = policy.Action(kind="follow", platform=r["platform"], target_uid=r["uid"], post_id=None,
                           post_text=r["text"], text="", when=now, source=source)
    if policy.plan_violations(db, settings, action):
        return False
    at = to_stored(now)
    facts = _facts(c, None, None, settings, None, follow=True)
    item_id = store.insert_item(db, {
        "kind": "follow", "status": "pending", "source": source, "platform": r["platform"], "post_id": r["post_id"],
        "target_user_id": r.get("user_id"), "audience_id": c.audience_id, "text": "", "score": c.score,
        "reason": explain.reason(facts, "en"), "explanation": explain.explanation(facts, "en"),
        "explanation_facts": json.dumps(facts, ensure_ascii=False, sort_keys=True),
        "dedupe_key": f"follow:{r['platform']}:{r['uid']}", "created_at": at, "updated_at": at,
        "target_uid": r["uid"], "post_pid": r["pid"], "target": c.target, "target_relevance": c.target_relevance,
    })
    if item_id is None:
        return False
    store.append_audit(db, at, queue_ops.PLANNER, "plan", item_id, None, "pending", None, "", {"kind": "follow"})
    return True
