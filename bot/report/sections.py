"""The report's content: data from storage.reporting turned into blocks of
charts and tables, before any HTML.

Why separate from the HTML: the same charts are written as PNG files with
``--png DIR``, and tests check the content without parsing markup. A block
with nothing to show carries an ``empty`` message ("no data yet: ...") that
says what would fill it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite3

from config import Settings
from storage import reporting
from storage.db import database_path
from config.times import parse_stored
from bot.report import charts
from bot.report.charts import Chart, ChartStyle
from bot.report.shapes import records, weighted
from bot.i18n import fmt_time, language, t, zone
from nlp.keywords import is_junk_keyword

log = logging.getLogger(__name__)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Block:
    title: str
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    facts: list[tuple[str, Any]] = field(default_factory=list)     # label -> value lines
    empty: str | None = None                                       # shown when there is nothing else


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    generated_at: str
    database: str
    overview: dict[str, int]
    analysis: dict[str, Any] | None
    sections: list[Section]
    lang: str = "zh"
    timezone: str = "UTC"

    def charts(self) -> list[Chart]:
        return [c for s in self.sections for b in s.blocks for c in b.charts]


def _guard(title: str, build: Callable[[], list[Block]], lang: str = "zh") -> list[Block]:
    """One broken section must not cost the whole report: log it, say so in place."""
    try:
        return build()
    except Exception as exc:  # a report of partial data beats no report
        log.exception("report section %r failed", title)
        return [Block(title=title, empty=t("rep.broken", lang, error=f"{type(exc).__name__}: {exc}"))]


def build_report(db: sqlite3.Connection, settings: Settings, lang: str | None = None) -> Report:
    """Every label from the message catalogue in ``lang`` (default ``[ui] language``);
    every time in the campaign's zone."""
    lang = lang if lang in ("zh", "en") else language(settings)
    style = ChartStyle(settings.report.cjk_font, lang)
    audiences = reporting.list_audiences(db)
    tzname = settings.engagement.timezone
    sec = [("map", "rep.map", "rep.map.intro", lambda: _map_blocks(db, settings, style, audiences, lang)),
           ("audiences", "rep.audiences", "rep.audiences.intro",
            lambda: _audience_blocks(db, settings, style, audiences, lang)),
           ("prospects", "rep.prospects", "rep.prospects.intro", lambda: _prospect_blocks(db, lang)),
           ("crawl", "rep.crawl", "rep.crawl.intro", lambda: _crawl_blocks(db, style, lang, tzname)),
           ("campaign", "rep.campaign", "rep.campaign.intro", lambda: _campaign_blocks(db, style, lang, tzname))]
    sections = [Section(sid, t(title, lang), t(intro, lang), _guard(t(title, lang), fn, lang))
                for sid, title, intro, fn in sec]
    return Report(
        generated_at=fmt_time(datetime.now(timezone.utc), _zone(tzname)),
        database=_db_name(db),
        overview=reporting.overview_counts(db),
        analysis=reporting.analysis_run(db),
        sections=sections,
        lang=lang,
        timezone=tzname,
    )


def _db_name(db: sqlite3.Connection) -> str:
    """The file name only: a report is handed on, the folder it came from is nobody's business."""
    path = database_path(db)
    return Path(path).name if path else ":memory:"


# ---------------------------------------------------------------- map

def _map_blocks(db, settings: Settings, style: ChartStyle, audiences: list[dict], lang: str) -> list[Block]:
    points = reporting.map_points(db, settings.report.map_max_points)
    chart = charts.audience_map(style, points, {a["id"]: a["label"] for a in audiences})
    if chart is None:
        return [Block(t("rep.map", lang), empty=t("rep.map.empty", lang))]
    return [Block(t("rep.map", lang), charts=[chart])]


# ---------------------------------------------------------------- audiences

# Fewer analysis runs than this: the size history is shown as numbers, not as a line.
MIN_HISTORY_FOR_CHART = 3


def _audience_facts(db, a: dict[str, Any], hist: list[tuple[str, float]], lang: str) -> list[tuple[str, Any]]:
    """Id, size, share, growth (as numbers while the history is short), targets served and prospects."""
    facts: list[tuple[str, Any]] = [(t("rep.f.id", lang), a["id"]), (t("rep.f.auto_name", lang), a["auto_name"]),
                                    (t("rep.f.members", lang), a["size"]),
                                    (t("rep.f.share", lang), f"{(a['share'] or 0):.0%}")]
    if hist and len(hist) < MIN_HISTORY_FOR_CHART:
        facts.append((t("rep.f.size", lang), " → ".join(str(int(v)) for _, v in hist)))
    info = reporting.audience_prospects(db, a["id"])
    served = [f"{name} ({score:.2f}, {n})" for name, score, n in info["targets"][:4]]
    if info["target"] and not any(s.startswith(f"{info['target']} (") for s in served):
        served.insert(0, str(info["target"]))
    facts.append((t("rep.f.targets", lang), "; ".join(served) or "-"))
    tiers = info["tiers"]
    facts.append((t("rep.f.prospects", lang),
                  f"{tiers.get('leader', 0)} / {tiers.get('engaged', 0)} / {tiers.get('potential', 0)}"))
    return facts


def _audience_blocks(db, settings: Settings, style: ChartStyle, audiences: list[dict], lang: str) -> list[Block]:
    if not audiences:
        return [Block(t("rep.audiences", lang), empty=t("rep.audiences.empty", lang))]
    history = reporting.size_history(db)
    tiers = reporting.tier_counts(db)
    tzname = settings.engagement.timezone
    tz = _zone(tzname)
    blocks = []
    for a in audiences:
        aid, name = a["id"], a["label"]
        slug = f"audience-{aid}"
        block = Block(f"{name}")
        hist = [(fmt_time(h["at"], tz)[:10] + f" #{h['run_id']}", h["size"]) for h in history.get(aid, [])]
        block.facts = _audience_facts(db, a, hist, lang)
        keywords, weight_label = _keywords(db, a, lang)
        topics = weighted(reporting.loads(a["topics"], [])) or reporting.audience_topics(db, aid)
        grid = _heatmap(reporting.audience_post_times(db, aid), tz)
        built = [
            charts.size_over_time(style, f"{slug}-size", name, hist) if len(hist) >= MIN_HISTORY_FOR_CHART else None,
            charts.bar_chart(style, f"{slug}-keywords", t("rep.c.keywords", lang, name=name), keywords, xlabel=weight_label),
            charts.bar_chart(style, f"{slug}-topics", t("rep.c.topics", lang, name=name), topics,
                             xlabel=t("rep.x.topic_weight", lang), color="#6a8d3b", limit=10),
            charts.tier_split(style, f"{slug}-tiers", name, tiers.get(aid, {})),
            charts.activity_heatmap(style, f"{slug}-activity", name, grid, tzname),
        ]
        block.charts = [c for c in built if c is not None]
        if built[1] is None and a["keywords"]:
            stored = [w for w, _ in weighted(reporting.loads(a["keywords"], [])) if not is_junk_keyword(w)]
            if stored:       # nothing to weigh them by: the words themselves, as text
                block.facts.append((t("rep.f.keywords", lang), "、".join(stored[:15])))
        missing = [t(f"rep.missing.{what}", lang) for what, c in zip(("size", "keywords", "topics", "tiers", "activity"), built)
                   if c is None and not (what == "size" and hist)]
        if missing:
            block.facts.append((t("rep.f.missing", lang), ", ".join(missing)))
        _audience_tables(db, block, a, lang, tz)
        blocks.append(block)
    return blocks


def _audience_tables(db, block: Block, a: dict[str, Any], lang: str, tz) -> None:
    infl = reporting.top_influencers(db, a["id"])
    if infl:
        block.tables.append(Table(
            [t(k, lang) for k in ("rep.t.influencer", "rep.t.uid", "rep.t.followers", "rep.t.influence", "rep.t.tier",
                                  "rep.t.verified")],
            [[r["name"] or "", r["uid"], r["followers"], None if r["influence"] is None else round(r["influence"], 3),
              t(f"tier.{r['tier']}", lang) if r["tier"] else "", t("rep.t.yes", lang) if r["verified"] else ""]
             for r in infl]))
    samples = records(reporting.loads(a.get("sample_posts"), []))[:5]
    if samples:
        block.tables.append(Table([t("rep.t.sample", lang), t("rep.t.by", lang), t("rep.t.at", lang)], [
            [s.get("text") or s.get("name") or "", s.get("user_name") or s.get("uid") or "",
             fmt_time(s.get("created_at"), tz)] for s in samples]))


def _keywords(db, a: dict[str, Any], lang: str) -> tuple[list[tuple[str, float]], str]:
    """The audience's keywords with real weights, junk words left out, and the axis label.

    c-TF-IDF weights when the analysis stored them for these words; otherwise the
    share of members' posts that mention the word (never the rank: a rank drawn as a
    bar length says nothing)."""
    words = [(w, v) for w, v in weighted(reporting.loads(a["keywords"], [])) if not is_junk_keyword(w)]
    terms = {w: v for w, v in weighted(reporting.loads(a.get("centroid_terms"), [])) if not is_junk_keyword(w)}
    if words and terms and all(w in terms for w, _ in words):
        return sorted(((w, terms[w]) for w, _ in words), key=lambda kv: -kv[1]), t("rep.x.weight", lang)
    if not words and terms:
        return [(w, v) for w, v in terms.items() if not w.startswith(("#", "@"))], t("rep.x.weight", lang)
    shares = reporting.keyword_post_shares(db, a["id"], [w for w, _ in words])
    ranked = sorted(((w, shares.get(w, 0.0)) for w, _ in words), key=lambda kv: -kv[1])
    return (ranked if any(v > 0 for _, v in ranked) else []), t("rep.x.share", lang)


def _zone(name: str):
    """The campaign's zone (UTC with a warning when unknown), as every other view uses it."""
    return zone(name)


def _offset(tz) -> str:
    """The zone's offset from UTC now, as an SQLite date modifier ('+480 minutes'): days in the
    report are the campaign's calendar days (a DST change shifts the boundary by an hour at most)."""
    minutes = int(datetime.now(timezone.utc).astimezone(tz).utcoffset().total_seconds() // 60)
    return f"{minutes:+d} minutes"


def _heatmap(times: list[str], tz) -> list[list[int]]:
    grid = [[0] * 24 for _ in range(7)]
    for t in times:
        when = parse_stored(t)
        if when is None:
            continue
        local = when.astimezone(tz)
        grid[local.weekday()][local.hour] += 1
    return grid


# ---------------------------------------------------------------- crawl

def _crawl_blocks(db, style: ChartStyle, lang: str, tzname: str) -> list[Block]:
    per_query = reporting.crawl_by_query(db)
    tz = _zone(tzname)
    per_day = reporting.crawl_by_day(db, offset=_offset(tz))
    blocks = []
    found = [r for r in per_query if r["posts"] or r["users"]]
    b = Block(t("rep.crawl.per_query", lang))
    posts_l, users_l = t("rep.s.posts", lang), t("rep.s.users", lang)
    chart = charts.grouped_bars(style, "crawl-per-query", t("rep.c.per_query", lang), [r["query"] for r in found],
                                {posts_l: [r["posts"] for r in found], users_l: [r["users"] for r in found]})
    if chart:
        b.charts.append(chart)
    qd = reporting.crawl_query_days(db, offset=_offset(tz))
    if qd:
        days = sorted({r["day"] for r in qd})
        top = [r["query"] for r in found[:8]]
        series = {q: [next((r["posts"] for r in qd if r["query"] == q and r["day"] == d), 0) for d in days] for q in top}
        chart = charts.time_series(style, "crawl-query-days", t("rep.c.query_days", lang), days, series,
                                   ylabel=t("rep.y.posts", lang))
        if chart:
            b.charts.append(chart)
    if per_query:
        b.tables.append(Table([t("rep.t.query", lang), posts_l, users_l] +
                              [t(f"rep.t.{k}", lang) for k in ("runs", "requests", "errors", "blocked", "failed", "last_run")],
                              [[r["query"], r["posts"], r["users"], r["runs"], r["requests"], r["errors"], r["blocked"],
                                r["failed"], fmt_time(r["last_run"], tz)] for r in per_query]))
    if not b.charts and not b.tables:
        b.empty = t("rep.crawl.empty", lang)
    blocks.append(b)

    b = Block(t("rep.crawl.per_day", lang))
    chart = charts.time_series(style, "crawl-per-day", t("rep.c.per_day", lang, tz=tzname), [r["day"] for r in per_day],
                               {posts_l: [r["posts"] for r in per_day], users_l: [r["users"] for r in per_day]})
    if chart:
        b.charts.append(chart)
    elif per_day:                       # one day so far: the numbers, not a dot
        b.tables.append(Table([t("rep.t.day", lang), posts_l, users_l],
                              [[r["day"], r["posts"], r["users"]] for r in per_day]))
    else:
        b.empty = t("rep.crawl.nothing", lang)
    blocks.append(b)
    blocks.append(_fault_block(db, style, per_query, lang, tz))
    return blocks


def _fault_block(db, style: ChartStyle, per_query: list[dict], lang: str, tz) -> Block:
    b = Block(t("rep.crawl.faults", lang))
    troubled = [r for r in per_query if r["errors"] or r["blocked"] or r["faults"]]
    kinds = sorted({k for r in troubled for k in r["faults"]})
    stacks = {k: [r["faults"].get(k, 0) for r in troubled] for k in kinds}
    if not kinds:
        stacks = {t("rep.s.errors", lang): [r["errors"] for r in troubled],
                  t("rep.s.blocked_runs", lang): [r["blocked"] for r in troubled]}
    chart = charts.stacked_bars(style, "crawl-faults", t("rep.c.faults", lang), [r["query"] for r in troubled], stacks)
    if chart:
        b.charts.append(chart)
    problems = reporting.crawl_problem_runs(db)
    if problems:
        b.tables.append(Table([t(f"rep.t.{k}", lang) for k in ("run", "query", "started", "status", "errors", "faults", "error")],
                              [[r["id"], r["query"] or "", fmt_time(r["started_at"], tz), r["status"], r["errors"],
                                ", ".join(f"{k} {v}" for k, v in reporting.loads(r["faults"], {}).items()),
                                (r["error"] or "")[:300]] for r in problems]))
    sources = reporting.source_health(db)
    if any(r["status"] != "ok" or r["consecutive_blocks"] or r["last_blocked_at"] for r in sources):
        b.tables.append(Table([t(f"rep.t.{k}", lang) for k in ("source", "platform", "status", "paused", "reason",
                                                             "blocks_row", "last_blocked", "last_ok")],
                              [[r["name"], r["platform"], r["status"], fmt_time(r["paused_until"], tz), r["pause_reason"] or "",
                                r["consecutive_blocks"], fmt_time(r["last_blocked_at"], tz), fmt_time(r["last_ok_at"], tz)]
                               for r in sources]))
    if not b.charts and not b.tables:
        b.empty = (t("rep.crawl.no_faults", lang) if per_query and any(r["runs"] for r in per_query)
                   else t("rep.crawl.no_runs", lang))
    return b


# ---------------------------------------------------------------- campaign

def _engagement_rates(db) -> list[dict[str, Any]]:
    """The engagement area's response-rate table, when that area is installed."""
    try:
        module = importlib.import_module("storage.engagement")
    except ImportError:
        return []
    fn = getattr(module, "response_rates", None)
    if fn is None or not reporting.has_table(db, "outcomes"):
        return []
    return list(fn(db))


def _campaign_blocks(db, style: ChartStyle, lang: str, tzname: str) -> list[Block]:
    blocks = []
    counts = reporting.queue_status_counts(db)
    b = Block(t("rep.campaign.states", lang))
    chart = charts.bar_chart(style, "campaign-states", t("rep.campaign.states", lang),
                             [(t(f"status.{k}", lang), v) for k, v in counts.items()], xlabel=t("rep.x.actions", lang),
                             color="#8e44ad")
    if chart:
        b.charts.append(chart)
    per_day = reporting.actions_per_day(db, offset=_offset(_zone(tzname)))
    if per_day:
        days = sorted({r["day"] for r in per_day})
        whats = [w for w in ("proposed", "approved", "sent") if any(r["what"] == w for r in per_day)]
        series = {t(f"rep.s.{w}", lang): [sum(r["n"] for r in per_day if r["what"] == w and r["day"] == d) for d in days]
                  for w in whats}
        chart = charts.time_series(style, "campaign-per-day", t("rep.c.per_day_actions", lang, tz=tzname), days, series,
                                   ylabel=t("rep.x.actions", lang))
        if chart:
            b.charts.append(chart)
        else:                           # one day so far: the numbers, not a dot
            b.tables.append(Table([t("rep.t.day", lang)] + list(series),
                                  [[d] + [v[i] for v in series.values()] for i, d in enumerate(days)]))
    if not b.charts and not b.tables:
        b.empty = t("rep.campaign.empty", lang)
    blocks.append(b)
    blocks.append(_rates_block(db, style, lang))
    return blocks


def _rates_block(db, style: ChartStyle, lang: str) -> Block:
    b = Block(t("rep.campaign.rates", lang))
    periods = reporting.response_by_period(db)
    if periods:
        keys = sorted({(r["audience"], r["template"], r["variant"]) for r in periods})
        weeks = sorted({r["period"] for r in periods})
        series = {}
        for key in keys[:12]:
            name = f"{key[0]} / {key[1] or '-'} v{key[2]}"
            vals = []
            for w in weeks:
                row = next((r for r in periods if (r["audience"], r["template"], r["variant"]) == key and r["period"] == w), None)
                vals.append(row["responded"] / row["sent"] if row and row["sent"] else None)
            series[name] = vals
        chart = charts.time_series(style, "campaign-response-rate", t("rep.c.rate", lang), weeks, series,
                                   ylabel=t("rep.y.rate", lang), percent=True)
        if chart:
            b.charts.append(chart)
    rates = _engagement_rates(db)
    if rates:
        cols = ("audience", "template", "variant", "kind", "sent", "responded", "replies", "likes", "follow_backs",
                "optouts", "rate")
        b.tables.append(Table([t(f"rep.t.{c}", lang) for c in cols],
                              [[r.get("audience"), r.get("template"), r.get("variant"), t(f"kind.{r.get('kind')}", lang),
                                r.get("sent"), r.get("responded"), r.get("replies"), r.get("likes"), r.get("follow_backs"),
                                r.get("optouts"), f"{(r.get('rate') or 0):.0%}"] for r in rates]))
    if not b.charts and not b.tables:
        b.empty = t("rep.rates.empty", lang)
    return b


# ---------------------------------------------------------------- prospects (issue 15)

def _prospect_blocks(db, lang: str) -> list[Block]:
    """Per target: how many prospects, how many of them fit no audience, which
    audiences it describes; then the users who fit no audience."""
    blocks = []
    for tl in reporting.target_links(db):
        b = Block(t("rep.pro.target", lang, target=tl["target"]))
        b.facts = [(t("rep.pro.prospects", lang), tl["prospects"]),
                   (t("rep.pro.unassigned_prospects", lang), tl["unassigned_prospects"])]
        if tl["audiences"]:
            b.tables.append(Table([t("rep.pro.audience", lang), "id", t("rep.pro.members", lang),
                                   t("rep.pro.mean_relevance", lang)],
                                  [[a["name"], a["id"], a["size"], round(a["target_score"] or 0, 3)]
                                   for a in tl["audiences"]]))
        else:
            b.facts.append((t("rep.pro.audience", lang), t("rep.pro.spread", lang)))
        blocks.append(b)
    una = reporting.unassigned_summary(db)
    b = Block(t("rep.pro.unassigned", lang))
    b.facts = [(t("rep.pro.unassigned_users", lang), una["users"]),
               (t("rep.pro.of_analysed", lang), f"{una['share']:.0%}"),
               (t("rep.pro.engaged", lang), t("rep.pro.never", lang))]
    if una["sample"]:
        b.tables.append(Table([t("rep.pro.user", lang), t("rep.pro.uid", lang), t("rep.pro.posts", lang),
                               t("rep.pro.best_relevance", lang), t("rep.pro.keywords", lang)],
                              [[r["name"] or "", r["uid"], r["n_posts"], round(r["relevance"] or 0, 3),
                                " ".join(r["keywords"][:5])] for r in una["sample"]]))
    blocks.append(b)
    return blocks
