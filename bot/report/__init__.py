"""The report: one self-contained HTML page of pictures managers read instead of tables.

Public entry points:

- ``render_report(db, settings) -> str``: the page (the review server serves it at /report).
- ``write_report(db, settings, path="report.html", png_dir=None) -> Path``: the page written
  atomically to ``path``; with ``png_dir`` every chart also as a PNG file there.
- ``build_report(db, settings) -> Report``: the content before HTML (charts as PNG bytes).

Imports inside the functions are deliberate: the CLI and the review server
import this package at start, and matplotlib should load only when a report
is actually drawn.
"""

from __future__ import annotations

from pathlib import Path

import sqlite3

from config import Settings


def build_report(db: sqlite3.Connection, settings: Settings, lang: str | None = None):
    """``lang`` (zh | en) overrides ``[ui] language`` for this one report."""
    from bot.report.sections import build_report as _build

    return _build(db, settings, lang)


def render_report(db: sqlite3.Connection, settings: Settings, lang: str | None = None) -> str:
    from bot.report.html import render_html

    return render_html(build_report(db, settings, lang))


def write_pngs(report, png_dir: str | Path) -> list[Path]:
    """Each chart of a built report as ``png_dir/<slug>.png``."""
    from bot.report.exports.writers import atomic_file

    out = Path(png_dir)
    written = []
    for chart in report.charts():
        path = out / f"{chart.slug}.png"
        with atomic_file(path, "wb") as fh:
            fh.write(chart.png)
        written.append(path)
    return written


def write_report(db: sqlite3.Connection, settings: Settings, path: str | Path = "report.html",
                 png_dir: str | Path | None = None) -> Path:
    from bot.report.exports.writers import atomic_file
    from bot.report.html import render_html

    report = build_report(db, settings)
    target = Path(path)
    with atomic_file(target, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(render_html(report))
    if png_dir is not None:
        write_pngs(report, png_dir)
    return target


__all__ = ["build_report", "render_report", "write_pngs", "write_report"]
