"""The report as one self-contained HTML file.

Why self-contained: the file is mailed around and opened offline, so charts
are inline PNG data URIs, styles are inline, and a Content-Security-Policy
forbids the page from loading anything at all. Every piece of text passes
through ``html.escape``; text from strangers (names, topics, posts) is also
wrapped in ``<bdi>`` so a right-to-left override in a name cannot flip the
rest of the line.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from bot.i18n import fmt_time, t, zone
from bot.report.sections import Block, Report, Section, Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei",
       system-ui, sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header { background: #24364b; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: .85; font-size: 13px; }
nav { padding: 8px 28px; background: #fff; border-bottom: 1px solid #ddd; position: sticky; top: 0; }
nav a { margin-right: 18px; color: #24364b; text-decoration: none; font-weight: 600; }
main { padding: 8px 28px 40px; max-width: 1200px; }
section { margin-top: 24px; }
section > h2 { border-bottom: 2px solid #24364b; padding-bottom: 4px; }
.intro { color: #555; margin-top: -6px; }
.block { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: 12px 16px; margin: 14px 0; }
.block h3 { margin: 0 0 8px; font-size: 17px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #666; }
.empty { color: #8a6d3b; background: #fcf8e3; border: 1px solid #faebcc; padding: 8px 12px; border-radius: 4px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; max-width: 100%; }
th, td { border: 1px solid #e1e4e8; padding: 3px 8px; text-align: left; vertical-align: top;
         max-width: 420px; overflow-wrap: anywhere; }
th { background: #f0f2f5; }
dl.facts { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 0 0 8px; font-size: 13px; }
dl.facts dt { color: #666; } dl.facts dd { margin: 0 0 0 4px; font-weight: 600; }
.overview { display: flex; gap: 12px; flex-wrap: wrap; }
.overview div { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: 8px 14px; }
.overview b { display: block; font-size: 20px; }
"""


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def untrusted(value: Any, limit: int = 400) -> str:
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"<bdi>{e(text)}</bdi>"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(t: Table) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(f"<td>{untrusted(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _block(b: Block) -> str:
    parts = [f'<div class="block"><h3>{untrusted(b.title, 120)}</h3>']
    if b.facts:
        parts.append('<dl class="facts">' + "".join(f"<dt>{e(k)}</dt><dd>{untrusted(v, 200)}</dd>" for k, v in b.facts)
                     + "</dl>")
    if b.charts:
        parts.append('<div class="charts">')
        for c in b.charts:
            parts.append(f'<figure><img src="{data_uri(c.png)}" alt="{e(c.alt)}" data-chart="{e(c.slug)}">'
                         f"<figcaption>{e(c.title)}</figcaption></figure>")
        parts.append("</div>")
    parts.extend(_table(t) for t in b.tables)
    if b.empty and not b.charts and not b.tables:
        parts.append(f'<p class="empty">{e(b.empty)}</p>')
    parts.append("</div>")
    return "".join(parts)


def _section(s: Section, lang: str = "zh") -> str:
    blocks = "".join(_block(b) for b in s.blocks) or f'<p class="empty">{e(t("ctx.none", lang))}</p>'
    return f'<section id="{e(s.id)}"><h2>{e(s.title)}</h2><p class="intro">{e(s.intro)}</p>{blocks}</section>'


def render_html(report: Report) -> str:
    lang = report.lang
    run = report.analysis
    run_text = (f"{t('rep.analysis', lang)} #{run['id']} ({run['status']}, "
                f"{fmt_time(run.get('ended_at') or run['started_at'], zone(report.timezone))})" if run else "")
    overview = "".join(f"<div><b>{e(v)}</b>{e(t('rep.ov.' + k, lang))}</div>" for k, v in report.overview.items())
    nav = "".join(f'<a href="#{e(s.id)}">{e(s.title)}</a>' for s in report.sections)
    title = t("rep.title", lang)
    generated = t("rep.generated", lang, at=report.generated_at, tz=report.timezone, db=report.database)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<header><h1>{e(title)}</h1><p>{e(generated)}{'; ' + e(run_text) if run_text else ''}</p></header>"
        f"<nav>{nav}</nav><main>"
        f'<section id="overview"><h2>{e(t("rep.overview", lang))}</h2><div class="overview">{overview}</div></section>'
        + "".join(_section(s, lang) for s in report.sections)
        + "</main></body></html>\n"
    )
