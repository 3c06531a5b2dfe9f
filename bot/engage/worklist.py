"""The manual worklist: for accounts without API access, the sender hands
approved actions to a person as a CSV and an HTML page with deep links and
ready-to-paste text, each with a suggested time that respects spacing,
quiet hours and caps.

Why the items stay ``sending`` (handed out) until a person confirms: the bot
cannot know whether the person posted, so caps count them as touches, and
``huaxiang queue resolve ID --sent|--not-sent --by NAME`` settles each one.
"""

from __future__ import annotations

import csv
import html
from datetime import datetime
from pathlib import Path
from typing import Any

from config import Settings

from bot.engage import policy
from bot.find.sources import post_link, profile_link
from bot.textsafe import formula_safe

COLUMNS = ("item", "post_at", "kind", "audience", "user", "post_link", "profile_link", "text", "post_excerpt", "confirm")


class Worklist:
    """Rows are appended to the CSV as they are handed out (a crash loses
    nothing already written); the HTML page is written at ``close``."""

    def __init__(self, settings: Settings, folder: str | Path | None = None, started: datetime | None = None):
        self.settings = settings
        self.folder = Path(folder or settings.engagement.worklist_dir)
        stamp = (started or datetime.now()).astimezone(policy.local_zone(settings)).strftime("%Y%m%d-%H%M%S")
        self.csv_path = self.folder / f"worklist-{stamp}.csv"
        self.html_path = self.folder / f"worklist-{stamp}.html"
        self.rows: list[dict[str, str]] = []

    def add(self, detail: dict[str, Any], post_at: datetime) -> None:
        zone = policy.local_zone(self.settings)
        row = {
            "item": str(detail["id"]),
            "post_at": post_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "kind": detail["kind"],
            "audience": detail.get("audience") or "",
            "user": detail.get("user_name") or detail.get("target_uid") or "",
            "post_link": post_link(detail.get("platform"), detail.get("post_pid"), detail.get("post_url"),
                                   self.settings.sources),
            "profile_link": profile_link(detail.get("platform"), detail.get("target_uid"), detail.get("user_url")),
            "text": detail.get("text") or "",
            "post_excerpt": (detail.get("post_text") or "")[:120],
            "confirm": f"huaxiang queue resolve {detail['id']} --sent --by NAME",
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        new = not self.csv_path.exists()
        cells = row if self.settings.report.raw_csv else {k: formula_safe(v) for k, v in row.items()}
        with self.csv_path.open("a", encoding="utf-8-sig" if new else "utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            if new:
                w.writeheader()
            w.writerow(cells)
        self.rows.append(row)

    def close(self) -> Path | None:
        if not self.rows:
            return None
        e = html.escape
        body = []
        for r in self.rows:
            links = " ".join(f'<a href="{e(r[k])}" rel="noopener noreferrer" target="_blank">{label}</a>'
                             for k, label in (("post_link", "post"), ("profile_link", "profile")) if r[k].startswith(("http://", "https://")))
            body.append(
                f"<tr><td>#{e(r['item'])}</td><td>{e(r['post_at'])}</td><td>{e(r['kind'])}</td><td>{e(r['audience'])}</td>"
                f"<td>{e(r['user'])}</td><td>{links}</td><td><textarea readonly rows=3 cols=40>{e(r['text'])}</textarea></td>"
                f"<td class=ex>{e(r['post_excerpt'])}</td><td><code>{e(r['confirm'])}</code></td></tr>")
        page = (
            "<!doctype html><html lang=zh><head><meta charset=utf-8><title>huaxiang worklist</title>"
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<style>body{font-family:sans-serif;margin:1em}td{border-top:1px solid #ccc;padding:4px;vertical-align:top}"
            ".ex{color:#555;max-width:20em}</style></head><body>"
            f"<h1>Worklist: {len(self.rows)} action(s) to post by hand</h1>"
            "<p>Post each text at (or after) its time, then confirm it with the command in the last column.</p>"
            "<table><tr><th>item</th><th>post at</th><th>kind</th><th>audience</th><th>user</th><th>links</th>"
            "<th>text (copy)</th><th>their post</th><th>confirm</th></tr>" + "".join(body) + "</table></body></html>")
        self.html_path.write_text(page, encoding="utf-8")
        return self.html_path
