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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils

from config import Settings
from storage import reporting
from bot.report import charts
from bot.report.charts import Chart, ChartStyle
from bot.report.shapes import records, weighted

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

    def charts(self) -> list[Chart]:
        return [c for s in self.sections for b in s.blocks for c in b.charts]


def _guard(title: str, build: Callable[[], list[Block]]) -> list[Block]:
    """One broken section must not cost the whole report: log it, say so in place."""
    try:
        return build()
    except Exception as exc:  # a report of partial data beats no report
        log.exception("report section %r failed", title)
        return [Block(title=title, empty=f"this part could not be drawn ({type(exc).__name__}: {exc})")]


def build_report(db: sqlite_utils.Database, settings: Settings) -> Report:
    style = ChartStyle(settings.report.cjk_font)
    audiences = reporting.list_audiences(db)
    sections = [
        Section("map", "Audience map", "Each point is a user placed by what they write; "
                "colour = audience, size = influence.", _guard("Audience map", lambda: _map_blocks(db, settings, style, audiences))),
        Section("audiences", "Audiences", "Size over time, distinctive keywords, topics, influencers, tiers and "
                "when members post.", _guard("Audiences", lambda: _audience_blocks(db, settings, style, audiences))),
        Section("prospects", "Prospects", "Users relevant to each target (0.5 and up) and the audiences they make up; "
                "users who fit no audience.", _guard("Prospects", lambda: _prospect_blocks(db))),
        Section("crawl", "Crawl", "What each query found, per day, and what went wrong.",
                _guard("Crawl", lambda: _crawl_blocks(db, style))),
        Section("campaign", "Campaign", "Proposed actions by state and how people responded, per audience and "
                "template variant.", _guard("Campaign", lambda: _campaign_blocks(db, style))),
    ]
    return Report(
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        database=_db_name(db),
        overview=reporting.overview_counts(db),
        analysis=reporting.analysis_run(db),
        sections=sections,
    )


def _db_name(db: sqlite_utils.Database) -> str:
    """The file name only: a report is handed on, the folder it came from is nobody's business."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return Path(row[2]).name if row and row[2] else ":memory:"


# ---------------------------------------------------------------- map

def _map_blocks(db, settings: Settings, style: ChartStyle, audiences: list[dict]) -> list[Block]:
    points = reporting.map_points(db, settings.report.map_max_points)
    chart = charts.audience_map(style, points, {a["id"]: a["label"] for a in audiences})
    if chart is None:
        return [Block("Audience map", empty="no data yet: run `huaxiang analyze` to place users on the map")]
    return [Block("Audience map", charts=[chart])]


# ---------------------------------------------------------------- audiences

def _audience_blocks(db, settings: Settings, style: ChartStyle, audiences: list[dict]) -> list[Block]:
    if not audiences:
        return [Block("Audiences", empty="no data yet: run `huaxiang analyze` to find audiences")]
    history = reporting.size_history(db)
    tiers = reporting.tier_counts(db)
    tz = _zone(settings.engagement.timezone)
    blocks = []
    for a in audiences:
        aid, name = a["id"], a["label"]
        slug = f"audience-{aid}"
        block = Block(f"{name}")
        block.facts = [("id", aid), ("auto-name", a["auto_name"]), ("members", a["size"]),
                       ("share", f"{(a['share'] or 0):.0%}")]
        hist = [(h["at"][:10] + f" #{h['run_id']}", h["size"]) for h in history.get(aid, [])]
        keywords = _keywords(a)
        topics = weighted(reporting.loads(a["topics"], [])) or reporting.audience_topics(db, aid)
        grid = _heatmap(reporting.audience_post_times(db, aid), tz)
        built = [
            charts.size_over_time(style, f"{slug}-size", name, hist),
            charts.bar_chart(style, f"{slug}-keywords", f"{name}: distinctive keywords", keywords, xlabel="weight"),
            charts.bar_chart(style, f"{slug}-topics", f"{name}: top topics", topics, xlabel="weight / posts",
                             color="#6a8d3b", limit=10),
            charts.tier_split(style, f"{slug}-tiers", name, tiers.get(aid, {})),
            charts.activity_heatmap(style, f"{slug}-activity", name, grid, settings.engagement.timezone),
        ]
        block.charts = [c for c in built if c is not None]
        missing = [what for what, c in zip(("size over time", "keywords", "topics", "tiers", "activity"), built) if c is None]
        if missing:
            block.facts.append(("no data yet", ", ".join(missing)))
        infl = reporting.top_influencers(db, aid)
        if infl:
            block.tables.append(Table(
                ["influencer", "user id", "followers", "influence", "tier", "verified"],
                [[r["name"] or "", r["uid"], r["followers"], None if r["influence"] is None else round(r["influence"], 3),
                  r["tier"] or "", "yes" if r["verified"] else ""] for r in infl]))
        samples = records(reporting.loads(a.get("sample_posts"), []))[:5]
        if samples:
            block.tables.append(Table(["sample post", "by", "at"], [
                [s.get("text") or s.get("name") or "", s.get("user_name") or s.get("uid") or "",
                 (s.get("created_at") or "")[:16]] for s in samples]))
        blocks.append(block)
    return blocks


def _keywords(a: dict[str, Any]) -> list[tuple[str, float]]:
    """The audience's keywords, weighted by its c-TF-IDF terms when the analysis stored them."""
    words = weighted(reporting.loads(a["keywords"], []))
    terms = dict(weighted(reporting.loads(a.get("centroid_terms"), [])))
    if words and terms and all(w in terms for w, _ in words):
        return sorted(((w, terms[w]) for w, _ in words), key=lambda kv: -kv[1])
    if words:
        return words
    return [(t, w) for t, w in terms.items() if not t.startswith(("#", "@"))]


def _zone(name: str) -> ZoneInfo | timezone:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; the activity heatmap uses UTC", name)
        return timezone.utc


def _heatmap(times: list[str], tz) -> list[list[int]]:
    grid = [[0] * 24 for _ in range(7)]
    for t in times:
        try:
            when = datetime.fromisoformat(t)
        except (TypeError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        local = when.astimezone(tz)
        grid[local.weekday()][local.hour] += 1
    return grid


# ---------------------------------------------------------------- crawl

def _crawl_blocks(db, style: ChartStyle) -> list[Block]:
    per_query = reporting.crawl_by_query(db)
    per_day = reporting.crawl_by_day(db)
    blocks = []
    found = [r for r in per_query if r["posts"] or r["users"]]
    b = Block("Found per query")
    chart = charts.grouped_bars(style, "crawl-per-query", "Posts and users found per query", [r["query"] for r in found],
                                {"posts": [r["posts"] for r in found], "users": [r["users"] for r in found]})
    if chart:
        b.charts.append(chart)
    qd = reporting.crawl_query_days(db)
    if qd:
        days = sorted({r["day"] for r in qd})
        top = [r["query"] for r in found[:8]]
        series = {q: [next((r["posts"] for r in qd if r["query"] == q and r["day"] == d), 0) for d in days] for q in top}
        chart = charts.time_series(style, "crawl-query-days", "Posts found per query per day", days, series, ylabel="posts")
        if chart:
            b.charts.append(chart)
    if per_query:
        b.tables.append(Table(["query", "posts", "users", "runs", "requests", "errors", "blocked", "failed", "last run"],
                              [[r["query"], r["posts"], r["users"], r["runs"], r["requests"], r["errors"], r["blocked"],
                                r["failed"], r["last_run"] or ""] for r in per_query]))
    if not b.charts and not b.tables:
        b.empty = "no data yet: run `huaxiang crawl` (or import posts) to fill this"
    blocks.append(b)

    b = Block("Found per day")
    chart = charts.time_series(style, "crawl-per-day", "New posts and users per day (UTC)", [r["day"] for r in per_day],
                               {"posts": [r["posts"] for r in per_day], "users": [r["users"] for r in per_day]})
    if chart:
        b.charts.append(chart)
    else:
        b.empty = "no data yet: nothing stored"
    blocks.append(b)

    b = Block("Errors and blocks")
    troubled = [r for r in per_query if r["errors"] or r["blocked"] or r["faults"]]
    kinds = sorted({k for r in troubled for k in r["faults"]})
    stacks = {k: [r["faults"].get(k, 0) for r in troubled] for k in kinds}
    if not kinds:
        stacks = {"errors": [r["errors"] for r in troubled], "blocked runs": [r["blocked"] for r in troubled]}
    chart = charts.stacked_bars(style, "crawl-faults", "Faults per query", [r["query"] for r in troubled], stacks)
    if chart:
        b.charts.append(chart)
    problems = reporting.crawl_problem_runs(db)
    if problems:
        b.tables.append(Table(["run", "query", "started", "status", "errors", "faults", "error"],
                              [[r["id"], r["query"] or "", r["started_at"], r["status"], r["errors"],
                                ", ".join(f"{k} {v}" for k, v in reporting.loads(r["faults"], {}).items()),
                                (r["error"] or "")[:300]] for r in problems]))
    sources = reporting.source_health(db)
    if any(r["status"] != "ok" or r["consecutive_blocks"] or r["last_blocked_at"] for r in sources):
        b.tables.append(Table(["source", "platform", "status", "paused until", "reason", "blocks in a row",
                               "last blocked", "last ok"],
                              [[r["name"], r["platform"], r["status"], r["paused_until"] or "", r["pause_reason"] or "",
                                r["consecutive_blocks"], r["last_blocked_at"] or "", r["last_ok_at"] or ""]
                               for r in sources]))
    if not b.charts and not b.tables:
        b.empty = ("no errors or blocks recorded" if per_query and any(r["runs"] for r in per_query)
                   else "no data yet: no crawl runs")
    blocks.append(b)
    return blocks


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


def _campaign_blocks(db, style: ChartStyle) -> list[Block]:
    blocks = []
    counts = reporting.queue_status_counts(db)
    b = Block("Actions by state")
    chart = charts.bar_chart(style, "campaign-states", "Actions by state", list(counts.items()), xlabel="actions",
                             color="#8e44ad")
    if chart:
        b.charts.append(chart)
    per_day = reporting.actions_per_day(db)
    if per_day:
        days = sorted({r["day"] for r in per_day})
        whats = [w for w in ("proposed", "approved", "sent") if any(r["what"] == w for r in per_day)]
        series = {w: [sum(r["n"] for r in per_day if r["what"] == w and r["day"] == d) for d in days] for w in whats}
        chart = charts.time_series(style, "campaign-per-day", "Actions per day (UTC)", days, series, ylabel="actions")
        if chart:
            b.charts.append(chart)
    if not b.charts:
        b.empty = "no data yet: run `huaxiang plan` to propose actions"
    blocks.append(b)

    b = Block("Response rate per audience and template variant")
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
        chart = charts.time_series(style, "campaign-response-rate", "Response rate per week", weeks, series,
                                   ylabel="responded / sent", percent=True)
        if chart:
            b.charts.append(chart)
    rates = _engagement_rates(db)
    if rates:
        b.tables.append(Table(["audience", "template", "variant", "kind", "sent", "responded", "replies", "likes",
                               "follow-backs", "opt-outs", "rate"],
                              [[r.get("audience"), r.get("template"), r.get("variant"), r.get("kind"), r.get("sent"),
                                r.get("responded"), r.get("replies"), r.get("likes"), r.get("follow_backs"),
                                r.get("optouts"), f"{(r.get('rate') or 0):.0%}"] for r in rates]))
    if not b.charts and not b.tables:
        b.empty = "no data yet: nothing sent, or no responses checked yet"
    blocks.append(b)
    return blocks


# ---------------------------------------------------------------- prospects (issue 15)

def _prospect_blocks(db) -> list[Block]:
    """Per target: how many prospects, how many of them fit no audience, which
    audiences it describes; then the users who fit no audience."""
    blocks = []
    for t in reporting.target_links(db):
        b = Block(f"target {t['target']}")
        b.facts = [("prospects (relevance 0.5+)", t["prospects"]),
                   ("of them in no audience", t["unassigned_prospects"])]
        if t["audiences"]:
            b.tables.append(Table(["audience", "id", "members", "mean relevance"],
                                  [[a["name"], a["id"], a["size"], round(a["target_score"] or 0, 3)]
                                   for a in t["audiences"]]))
        else:
            b.facts.append(("audiences", "none: its prospects are spread over several audiences"))
        blocks.append(b)
    una = reporting.unassigned_summary(db)
    b = Block("Users who fit no audience")
    b.facts = [("unassigned", una["users"]), ("of analysed users", f"{una['share']:.0%}"),
               ("engaged as members", "never")]
    if una["sample"]:
        b.tables.append(Table(["user", "user id", "posts", "best relevance", "own keywords"],
                              [[r["name"] or "", r["uid"], r["n_posts"], round(r["relevance"] or 0, 3),
                                " ".join(r["keywords"][:5])] for r in una["sample"]]))
    blocks.append(b)
    return blocks
