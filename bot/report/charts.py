"""Chart builders: plain data in, a PNG (as bytes) out, drawn by matplotlib.

Why the object API (``matplotlib.figure.Figure``) and not pyplot: the review
server renders reports from worker threads, and pyplot keeps global state.
Each builder returns ``None`` when it has nothing to draw, so the page can
say "no data yet" instead of showing an empty frame.

Labels often come from strangers (names, keywords, topics). matplotlib would
read ``$...$`` in them as math and fail on bad math, so every label passes
through ``label()``.
"""

from __future__ import annotations

import io
import math
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.ticker  # noqa: E402
from bot.i18n import t, t as tr  # noqa: E402
from matplotlib import rc_context  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bot.report.fonts import font_rc  # noqa: E402

_DRAW_LOCK = threading.RLock()
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@dataclass
class Chart:
    slug: str           # file name (without .png) for --png
    title: str
    png: bytes
    alt: str


def label(text: Any, limit: int = 24) -> str:
    """Safe chart text: no control/bidi characters, no mathtext, bounded length."""
    s = _CONTROL.sub("", str(text if text is not None else ""))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("\\", "\\\\").replace("$", r"\$")


class ChartStyle:
    def __init__(self, cjk_font: str = "", lang: str = "zh"):
        self.lang = lang
        self.rc = {**font_rc(cjk_font), "figure.dpi": 100, "axes.spines.top": False, "axes.spines.right": False,
                   "axes.titlesize": 12, "font.size": 10}

    def render(self, fig: Figure, slug: str, title: str, alt: str) -> Chart:
        buf = io.BytesIO()
        with rc_context(self.rc), warnings.catch_warnings():
            # Emoji and rare characters are missing from every font; a box is fine.
            warnings.filterwarnings("ignore", message=r".*[Gg]lyph.*missing.*")
            warnings.filterwarnings("ignore", message=r".*[Mm]atplotlib currently does not support.*")
            fig.savefig(buf, format="png", facecolor="white")
        return Chart(slug=slug, title=title, png=buf.getvalue(), alt=alt)

    def draw(self, slug: str, title: str, alt: str, painter, w: float = 5.4, h: float = 3.6) -> Chart:
        """Create a figure, let ``painter(fig)`` draw on it under our rcParams, render it.

        rc_context and warning filters are process-wide, so two threads (the
        review server) take turns here rather than mixing each other's fonts.
        """
        with _DRAW_LOCK:
            with rc_context(self.rc), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*[Gg]lyph.*missing.*")
                fig = Figure(figsize=(w, h), layout="constrained")
                painter(fig)
            return self.render(fig, slug, title, alt)


def _colors(n: int) -> list:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ---------------------------------------------------------------- audiences

def audience_map(style: ChartStyle, points: Sequence[dict[str, Any]], names: dict[int, str]) -> Chart | None:
    """Users as points (x, y from the analysis), coloured by audience, sized by
    influence, each audience labelled at its centre."""
    pts = [p for p in points if _finite(p.get("x")) and _finite(p.get("y"))]
    if not pts:
        return None
    ids = sorted({p["audience_id"] for p in pts}, key=lambda a: (a is None, a))
    colours = dict(zip(ids, _colors(len(ids))))
    infl = [max(0.0, float(p.get("influence") or 0.0)) for p in pts]
    top = max(infl) or 1.0
    # Smaller points when there are many, so dense audiences stay readable.
    scale = max(0.12, min(1.0, math.sqrt(300 / len(pts))))

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        for aid in ids:
            group = [(p, s) for p, s in zip(pts, infl) if p["audience_id"] == aid]
            xs = [p["x"] for p, _ in group]
            ys = [p["y"] for p, _ in group]
            sizes = [scale * (8 + 120 * math.sqrt(s / top)) for _, s in group]
            name = names.get(aid, "unassigned") if aid is not None else "unassigned"
            ax.scatter(xs, ys, s=sizes, color=colours[aid], alpha=0.6, linewidths=0, label=label(name))
            cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
            ax.annotate(label(name), (cx, cy), ha="center", va="center", fontsize=11,
                        bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": colours[aid], "alpha": 0.85})
        ax.margins(0.12)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(t("rep.map", style.lang))
        if len(ids) <= 12:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False, markerscale=0.7)

    return style.draw("audience-map", t("rep.map", style.lang),
                      t("alt.map", style.lang, users=len(pts), audiences=len(ids)), paint, w=9, h=6.5)


def size_over_time(style: ChartStyle, slug: str, name: str, history: Sequence[tuple[str, float]]) -> Chart | None:
    if not history:
        return None

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        xs = list(range(len(history)))
        ax.plot(xs, [h[1] for h in history], marker="o", color="#3b6ea8")
        ax.set_xticks(xs, [label(h[0], 16) for h in history], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(t("rep.f.members", style.lang))
        ax.set_ylim(bottom=0)
        ax.set_title(t("rep.c.size", style.lang, name=label(name)))

    return style.draw(slug, t("rep.c.size", style.lang, name=label(name)),
                      t("alt.size", style.lang, name=name, runs=len(history)), paint, h=3.0)


def bar_chart(style: ChartStyle, slug: str, title: str, items: Sequence[tuple[str, float]], xlabel: str = "",
              color: str = "#3b6ea8", limit: int = 15) -> Chart | None:
    """Horizontal bars, largest on top (keywords, topics, queries)."""
    items = [(k, v) for k, v in items if v is not None][:limit]
    if not items:
        return None

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        ys = list(range(len(items)))[::-1]
        ax.barh(ys, [v for _, v in items], color=color)
        ax.set_yticks(ys, [label(k) for k, _ in items])
        if xlabel:
            ax.set_xlabel(xlabel)
        ax.set_title(label(title, 60))

    alt = ", ".join(f"{k} {v:g}" for k, v in items[:5])
    return style.draw(slug, title, alt, paint, h=max(2.2, 0.3 * len(items) + 1.0))


def tier_split(style: ChartStyle, slug: str, name: str, counts: dict[str, int]) -> Chart | None:
    order = [t for t in ("leader", "engaged", "potential") if counts.get(t)] + \
            sorted(t for t in counts if t not in ("leader", "engaged", "potential") and counts[t])
    if not order:
        return None
    palette = {"leader": "#c0392b", "engaged": "#e67e22", "potential": "#95a5a6"}

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        left = 0
        total = sum(counts[t] for t in order)
        for t in order:
            n = counts[t]
            name_t = tr(f"tier.{t}", style.lang) if t in palette else label(t)
            ax.barh([0], [n], left=left, color=palette.get(t, "#7f8c8d"), label=f"{name_t} ({n})")
            if n / total > 0.08:
                ax.text(left + n / 2, 0, f"{name_t}\n{n}", ha="center", va="center", color="white", fontsize=9)
            left += n
        ax.set_yticks([])
        ax.set_xlim(0, total)
        ax.set_title(tr("rep.c.tiers", style.lang, name=label(name)))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=len(order), frameon=False, fontsize=8)

    return style.draw(slug, tr("rep.c.tiers", style.lang, name=label(name)),
                      ", ".join(f"{tr('tier.' + t, style.lang) if t in palette else t} {counts[t]}" for t in order),
                      paint, h=1.9)


def activity_heatmap(style: ChartStyle, slug: str, name: str, grid: Sequence[Sequence[int]], tz: str) -> Chart | None:
    """Posts by weekday (rows) and local hour (columns)."""
    if not grid or not any(any(row) for row in grid):
        return None

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        im = ax.imshow(grid, aspect="auto", cmap="YlOrRd", interpolation="nearest")
        ax.set_yticks(range(7), [t(f"wd.{d.lower()}", style.lang) for d in WEEKDAYS])
        ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
        ax.set_xlabel(t("rep.x.hour", style.lang, tz=label(tz, 40)))
        ax.set_title(t("rep.c.activity", style.lang, name=label(name), tz=label(tz, 40)))
        fig.colorbar(im, ax=ax, label=t("rep.y.posts", style.lang), shrink=0.8)

    total = sum(sum(r) for r in grid)
    return style.draw(slug, t("rep.c.activity", style.lang, name=label(name), tz=label(tz, 40)),
                      t("alt.activity", style.lang, posts=total), paint, h=3.0)


# ---------------------------------------------------------------- crawl

def grouped_bars(style: ChartStyle, slug: str, title: str, cats: Sequence[str], series: dict[str, Sequence[float]],
                 limit: int = 20) -> Chart | None:
    cats = list(cats)[:limit]
    if not cats or not any(any(v[: len(cats)]) for v in series.values()):
        return None

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        n = len(series)
        height = 0.8 / max(n, 1)
        colours = _colors(n)
        for i, (name, values) in enumerate(series.items()):
            ys = [len(cats) - 1 - j + (i - (n - 1) / 2) * height for j in range(len(cats))]
            ax.barh(ys, list(values)[: len(cats)], height=height, color=colours[i], label=label(name))
        ax.set_yticks(range(len(cats))[::-1], [label(c) for c in cats])
        ax.set_title(label(title, 60))
        ax.legend(frameon=False, fontsize=8)

    return style.draw(slug, title, t("alt.rows", style.lang, title=title, rows=len(cats)), paint,
                      h=max(2.4, 0.45 * len(cats) + 1.0))


def time_series(style: ChartStyle, slug: str, title: str, days: Sequence[str], series: dict[str, Sequence[float]],
                ylabel: str = "", percent: bool = False) -> Chart | None:
    """A line per series over the periods; None with fewer than two periods
    (one dot on day one is not a trend: the caller shows the numbers)."""
    if len(days) < 2 or not any(any(v) for v in series.values()):
        return None

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        xs = list(range(len(days)))
        for colour, (name, values) in zip(_colors(len(series)), series.items()):
            pairs = [(x, v) for x, v in zip(xs, values) if v is not None]
            ax.plot([p[0] for p in pairs], [p[1] for p in pairs], marker="o" if len(days) < 40 else None,
                    markersize=3, color=colour, label=label(name, 40))
        step = max(1, len(days) // 12)
        ax.set_xticks(xs[::step], [label(d, 12) for d in days[::step]], rotation=30, ha="right", fontsize=8)
        if percent:
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.set_ylim(0, 1.05)
        else:
            ax.set_ylim(bottom=0)
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.set_title(label(title, 60))
        if len(series) <= 12:
            ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))

    return style.draw(slug, title, t("alt.series", style.lang, title=title, periods=len(days), series=len(series)),
                      paint, h=3.4)


def stacked_bars(style: ChartStyle, slug: str, title: str, cats: Sequence[str], stacks: dict[str, Sequence[float]],
                 limit: int = 20) -> Chart | None:
    cats = list(cats)[:limit]
    if not cats or not any(any(v[: len(cats)]) for v in stacks.values()):
        return None

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        ys = list(range(len(cats)))[::-1]
        left = [0.0] * len(cats)
        for colour, (name, values) in zip(_colors(len(stacks)), stacks.items()):
            vals = list(values)[: len(cats)]
            ax.barh(ys, vals, left=left, color=colour, label=label(name))
            left = [a + b for a, b in zip(left, vals)]
        ax.set_yticks(ys, [label(c) for c in cats])
        ax.set_title(label(title, 60))
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))

    return style.draw(slug, title, t("alt.rows", style.lang, title=title, rows=len(cats)), paint,
                      h=max(2.4, 0.4 * len(cats) + 1.0))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
