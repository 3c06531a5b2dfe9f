"""`huaxiang demo` runs the whole pipeline offline and sends nothing."""

from __future__ import annotations

import json

from storage.db import connect


def test_demo_runs_end_to_end_and_sends_nothing(cli, tmp_path, monkeypatch):
    import bot.find.sandbox.server as server

    seen = []
    real_start = server.start_sandbox

    def spy(*args, **kwargs):
        sandbox = real_start(*args, **kwargs)
        seen.append(sandbox)
        return sandbox

    monkeypatch.setattr(server, "start_sandbox", spy)
    monkeypatch.setattr("bot.find.sandbox.start_sandbox", spy)
    code, out, err = cli("demo")
    assert code == 0, err
    assert "1. Find" in out and "4. Report" in out
    db = connect(tmp_path / "huaxiang.db")
    posts, users = (db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("posts", "users"))
    assert posts > 300 and users > 50
    assert db.execute("SELECT COUNT(*) FROM audiences WHERE status = 'active'").fetchone()[0] >= 3
    statuses = dict(db.execute("SELECT status, COUNT(*) FROM queue GROUP BY status").fetchall())
    assert statuses.get("pending", 0) > 0
    assert set(statuses) == {"pending"}                      # nothing approved, nothing sent
    assert seen and seen[0].actions == []                   # the platform received no write
    assert (tmp_path / "huaxiang-report.html").stat().st_size > 10_000
    # issue 13: drafts that quote their post, some reposts, only people relevant to a target
    rows = db.execute("SELECT q.kind, q.text, q.target, q.target_relevance, q.draft_reason, p.text FROM queue q"
                           " JOIN posts p ON p.id = q.post_id WHERE q.kind IN ('reply', 'repost')").fetchall()
    assert rows and any(r[0] == "repost" for r in rows)
    assert len({r[1] for r in rows}) == len(rows) and not any("{" in r[1] for r in rows)
    for kind, text, target, rel, reason, post in rows:
        assert target in ("健身人群", "咖啡爱好者") and rel >= 0.2
        why = json.loads(reason)
        assert why["post_kind"] and any(p in text and p in post for p in why["phrases"])
