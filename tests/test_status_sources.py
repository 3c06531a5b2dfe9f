"""A blocked source is paused with a growing cool-down across runs, the other
source carries on, and ``huaxiang status`` says so."""

from __future__ import annotations

from datetime import datetime, timezone

from conftest import make_settings
from storage.db import connect
from bot.commands.status import collect_status
from bot.service.scheduler import run_once_locked


def test_blocked_source_is_paused_others_carry_on_and_status_shows_the_cool_down(tmp_path, cli):
    from bot.find.sandbox import FaultConfig, start_sandbox

    fast = {"min_interval_s": 0, "jitter_s": 0, "backoff_s": 0, "max_retries": 0, "page_retries": 0,
            "fetch_authors": False, "block_cooldown_s": 600}
    with start_sandbox(seed=5, n_users=200) as good, \
            start_sandbox(seed=5, n_users=200, faults=FaultConfig(captcha=1.0)) as bad:
        settings = make_settings({
            "sources": [{"name": "good", "platform": "sandbox", "base_url": good.base_url, **fast},
                        {"name": "bad", "platform": "sandbox", "base_url": bad.base_url, **fast}],
            "queries": [{"name": "fit", "source": "good", "kind": "topic", "value": "健身打卡", "schedule": "every 1h"},
                        {"name": "fit-bad", "source": "bad", "kind": "topic", "value": "健身打卡", "schedule": "every 1h"}],
            "schedule": {"analyze": "manual", "plan": "manual"},
        })
        dbp = tmp_path / "t.db"
        first = dict((s.id, o.status) for s, o in run_once_locked(dbp, settings, install_signals=False))
        db = connect(dbp)
        until1 = db.execute("SELECT paused_until FROM sources WHERE name = 'bad'").fetchone()[0]
        db.close()
        second = dict((s.id, o.status) for s, o in run_once_locked(dbp, settings, install_signals=False))
    assert first == {"crawl:fit": "ok", "crawl:fit-bad": "partial"}
    assert second["crawl:fit"] == "ok" and second["crawl:fit-bad"] == "partial"  # still cooling down: skipped
    db = connect(dbp)
    try:
        st = collect_status(db, dbp, settings)
        assert db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] > 0
    finally:
        db.close()
    (paused,) = st["paused_sources"]
    assert paused["name"] == "bad" and paused["consecutive_blocks"] >= 1 and "captcha" in paused["pause_reason"]
    assert datetime.fromisoformat(paused["paused_until"]) > datetime.now(timezone.utc)
    assert paused["paused_until"] >= until1
    jobs = {j["job"]: j for j in st["jobs"]}
    assert jobs["crawl:fit-bad"]["last_status"] == "partial" and jobs["crawl:fit-bad"]["last_error"]
    (tmp_path / "huaxiang.toml").write_text("", encoding="utf-8")
    code, out, _ = cli("--db", dbp, "status")
    assert code == 0 and "paused sources:" in out and f"bad: paused until {paused['paused_until']}" in out
