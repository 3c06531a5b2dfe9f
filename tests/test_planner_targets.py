"""Issue 13's planning: only users relevant to a declared target, reposts with
a comment for strong posts, drafts with their reasons, a config that refuses
placeholders and audiences that name nothing."""

from __future__ import annotations

import csv
import json
import random

import pytest

from bot.report.exports import export_queue
from bot.engage.planner import run_plan
from config import ConfigError, parse_settings
from storage import engagement as store
from storage.db import transaction
from test_queue_world import NOW, build_world

TEXTS = {f"p{i}_{j}": t for i in range(6) for j, t in enumerate([
    f"今天深蹲又突破了，鸡胸肉也吃够了，第{i}周 #健身打卡#",
    f"分享一下我的卧推计划，肩背一起练，第{i}周"])}
LIBRARY = [{"id": "squat", "audience": "健身人群", "text": "深蹲时膝盖和脚尖同向，膝盖会轻松很多", "keywords": ["深蹲"]},
           {"id": "bench", "audience": "健身人群", "text": "卧推时肩胛骨收紧下沉更安全", "keywords": ["卧推", "肩背"]}]


def campaign(**eng):
    e = {"quiet_hours": "", "min_spacing_s": 0, "spacing_jitter_s": 0, "daily_cap": 1000, "hourly_cap": 1000,
         "follow_suggestions": False, "min_relevance": 0.3, "library": LIBRARY, "repost_min_interactions": 20}
    e.update(eng)
    return parse_settings({"audiences": [{"name": "健身人群", "seeds": ["健身", "深蹲"]},
                                         {"name": "新手妈妈", "seeds": ["辅食"]}],
                           "engagement": e})


def relevance(db, scores: dict[str, tuple[float, float]]):
    with transaction(db):
        for uid, (fit, mom) in scores.items():
            user_id = db.execute("SELECT id FROM users WHERE uid = ?", (uid,)).fetchone()[0]
            for target, score in (("健身人群", fit), ("新手妈妈", mom)):
                db.execute("INSERT INTO user_relevance (user_id, target, score, explanation) VALUES (?, ?, ?, ?)",
                                (user_id, target, score, f"{target} words"))


SCORES = {"u0": (0.9, 0.0), "u1": (0.1, 0.05), "u2": (0.5, 0.0), "u3": (0.0, 0.0), "u4": (0.35, 0.8), "u5": (0.0, 0.2)}


def test_actions_only_to_users_relevant_to_a_declared_target(db):
    build_world(db, texts=TEXTS)
    relevance(db, SCORES)
    summary = run_plan(db, campaign(), NOW, rng=random.Random(0))
    rows = [r for r in store.list_items(db) if r["kind"] != "follow"]
    assert {r["target_uid"] for r in rows} == {"u0", "u2", "u4"}
    for r in rows:
        assert r["target_relevance"] >= 0.3
        assert r["target"] == ("新手妈妈" if r["target_uid"] == "u4" else "健身人群")
    assert sum(summary.off_target.values()) == 6 and set(summary.off_target) == {"新手妈妈"}   # u1, u3, u5: 2 posts each
    # opting in engages the rest too, serving no target
    more = run_plan(db, campaign(engage_off_target=True), NOW, rng=random.Random(0))
    assert more.created == 3
    late = [r for r in store.list_items(db) if r["target_uid"] in ("u1", "u3", "u5")]
    assert late and all(r["target"] is None for r in late)


def test_strong_posts_by_leaders_get_a_repost_with_a_comment(db):
    build_world(db, texts=TEXTS)
    relevance(db, {u: (0.9, 0.0) for u in SCORES})
    with transaction(db):
        db.execute("UPDATE posts SET likes = 80")
    run_plan(db, campaign(repost_share=0.5), NOW, rng=random.Random(0))
    rows = [r for r in store.list_items(db) if r["kind"] != "follow"]
    reposts = [r for r in rows if r["kind"] == "repost"]
    assert reposts and len(reposts) <= 0.5 * len(rows) + 1
    for r in reposts:
        assert r["tier"] in ("leader", "engaged")
        reason = json.loads(r["draft_reason"])
        assert reason["drafter"] in ("builtin", "template") and reason["phrases"]
        assert any(p in r["post_text"] for p in reason["phrases"])


def test_every_draft_records_why_and_quotes_its_post(db):
    build_world(db, texts=TEXTS)
    relevance(db, {u: (0.9, 0.0) for u in SCORES})
    run_plan(db, campaign(templates=[]), NOW, rng=random.Random(0))
    rows = [r for r in store.list_items(db) if r["kind"] != "follow"]
    assert rows
    for r in rows:
        reason = json.loads(r["draft_reason"])
        assert reason["post_kind"] in ("progress", "share") and reason["drafter"] == "builtin"
        assert any(p in r["text"] and p in r["post_text"] for p in reason["phrases"])
        if "library" in reason:
            assert reason["library"]["text"].rstrip("。") in r["text"]
    assert len({r["text"] for r in rows}) == len(rows)
    assert any("library" in json.loads(r["draft_reason"]) for r in rows)


def test_export_queue_shows_target_relevance_and_why(db, tmp_path):
    build_world(db, texts=TEXTS)
    relevance(db, SCORES)
    s = campaign()
    run_plan(db, s, NOW, rng=random.Random(0))
    out = tmp_path / "q.csv"
    export_queue(db, s, "csv", out)
    with out.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"target", "target_relevance", "draft_why"} <= set(rows[0])
    for r in rows:
        if r["kind"] != "follow":
            assert r["target"] and float(r["target_relevance"]) >= 0.3 and "帖" in r["draft_why"]   # zh by default


@pytest.mark.parametrize("change, key, words", [
    ({"templates": [{"name": "t", "audience": "*", "variants": ["{nick} 你好"]}]}, "engagement.templates[0].variants",
     "unknown placeholder {nick}"),
    ({"templates": [{"name": "t", "audience": "健身人君", "variants": ["{phrase}不错"]}]},
     "engagement.templates[0].audience", "'健身人君' names no audience"),
    ({"library": [{"id": "x", "audience": "咖啡", "text": "多喝水"}]}, "engagement.library[0].audience", "names no audience"),
    ({"min_relevance": 1.5}, "engagement.min_relevance", "from 0 to 1"),
])
def test_config_refuses_unknown_placeholders_and_audiences_that_name_nothing(change, key, words):
    with pytest.raises(ConfigError) as err:
        campaign(**change)
    assert err.value.key == key and words in err.value.problem
