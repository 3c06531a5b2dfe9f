"""Prospects (issue 15): relevance by meaning on generated corpora, users who
fit no audience left unassigned everywhere, mixed audiences, names without
furniture words, and the prospects export."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bot.understand.run import run_analysis
from nlp import encode, keywords as kw
from nlp.cluster import split_merged, unfocused
from storage import analysis_input as input_store
from storage import audiences as audience_store
from storage import user_results as result_store
from storage import engagement
from storage import reporting
from storage.db import transaction
from storage.posts import upsert_posts
from storage.records import Post
from conftest import make_settings
from test_semantic import LabelEncoder, noise_corpus

VOCAB = {
    "fitness": ["增肌", "深蹲", "蛋白粉", "卧推", "减脂", "有氧", "健身房", "私教", "肌肉", "体脂", "跑步", "瑜伽"],
    "food": ["火锅", "烧烤", "奶茶", "甜品", "探店", "美食", "小龙虾", "麻辣烫", "烤肉", "蛋糕", "餐厅", "外卖"],
    "games": ["王者荣耀", "上分", "开黑", "英雄", "段位", "皮肤", "排位", "手游", "电竞", "战队", "副本", "装备"],
    "travel": ["旅行", "机票", "酒店", "景点", "自驾", "签证", "攻略", "海边", "古镇", "民宿", "行程", "打卡"],
    "pets": ["猫咪", "狗狗", "猫粮", "铲屎官", "遛狗", "宠物医院", "猫砂", "驱虫", "萌宠", "喵星人", "汪星人", "领养"],
}
FILLER = ["今天", "真的", "感觉", "朋友", "周末", "终于", "一起", "推荐", "大家", "开心", "分享", "准备"]
FURNITURE = "组图"          # headline boilerplate: used by a share of every audience's users
RARE_SEED = "举铁"          # the fitness target's seed: few fitness users ever write it


def corpus(n_users: int = 250, random_share: float = 0.0, seed: int = 11,
           furniture: float = 0.3) -> tuple[list[Post], dict[str, str]]:
    """Users with one interest (truth = its name), or with none (truth "random":
    every post from a random interest)."""
    rng = random.Random(seed)
    groups = sorted(VOCAB)
    posts, truth = [], {}
    for u in range(n_users):
        uid = f"u{u}"
        g = "random" if rng.random() < random_share else groups[u % len(groups)]
        truth[uid] = g
        boiler = rng.random() < furniture           # this user's posts carry the boilerplate
        for j in range(rng.randint(4, 9)):
            src = rng.choice(groups) if g == "random" else (g if rng.random() < 0.85 else rng.choice(groups))
            words = rng.sample(VOCAB[src], 4) + rng.sample(FILLER, 2)
            if src == "fitness" and u % 7 == 0 and j == 0:
                words.append(RARE_SEED)
            if boiler and rng.random() < 0.8:
                words += [FURNITURE, FURNITURE]
            rng.shuffle(words)
            posts.append(Post(platform="test", pid=f"{uid}-{j}", uid=uid, text="，".join(words),
                              created_at=f"2026-11-{1 + j:02d}T{8 + u % 12:02d}:00:00+08:00"))
    return posts, truth


def load(db, posts):
    with transaction(db):
        upsert_posts(db, posts)


TARGETS = {"audiences": [{"name": "健身人群", "seeds": [RARE_SEED], "description": "喜欢健身和运动的年轻人"},
                         {"name": "铲屎官", "seeds": ["猫咪"], "exclude": ["领养"]}]}


def relevance_of(db, target: str) -> dict[str, float]:
    return dict(db.execute("SELECT u.uid, r.score FROM user_relevance r JOIN users u ON u.id = r.user_id"
                                " WHERE r.target = ?", (target,)).fetchall())


def test_words_find_users_who_never_write_the_seed(db):
    posts, truth = corpus()
    load(db, posts)
    writers = {p.uid for p in posts if RARE_SEED in p.text}
    fitness = {u for u, g in truth.items() if g == "fitness"}
    assert len(writers) < 0.25 * len(fitness)          # the seed is rare among the relevant users
    run_analysis(db, make_settings(TARGETS))
    rel = relevance_of(db, "健身人群")
    uids = sorted(rel)
    assert roc_auc_score([truth[u] == "fitness" for u in uids], [rel[u] for u in uids]) >= 0.95
    top = sorted(uids, key=lambda u: -rel[u])[:30]
    assert sum(truth[u] == "fitness" for u in top) >= 28
    silent = [u for u in fitness if u not in writers]
    assert np.median([rel[u] for u in silent]) >= 0.5 > np.median([rel[u] for u in uids if truth[u] != "fitness"])
    # the explanation names matching posts and terms
    best = max(silent, key=lambda u: rel[u])
    why = result_store.user_relevance(db, db.execute("SELECT id FROM users WHERE uid = ?", (best,)).fetchone()[0])
    text = why["健身人群"][1]
    assert "posts: 「" in text and "terms: " in text and any(w in text for w in VOCAB["fitness"])


def test_sentence_vectors_find_prospects_when_words_say_nothing(db, monkeypatch):
    posts, truth, label_of = noise_corpus(n_users=60, n_labels=3)
    label_of["关注这个话题的人，话题零"] = 0          # the target's description and seed, as the fake model sees them
    monkeypatch.setattr(encode, "default_encoder", lambda: LabelEncoder(label_of))
    load(db, posts)
    s = make_settings({"analysis": {"encoder": "semantic"},
                       "audiences": [{"name": "零", "seeds": ["话题零"], "description": "关注这个话题的人"}]})
    run_analysis(db, s)
    rel = relevance_of(db, "零")
    uids = sorted(rel)
    assert roc_auc_score([truth[u] == 0 for u in uids], [rel[u] for u in uids]) >= 0.95
    u0 = next(u for u in uids if truth[u] == 0)
    why = result_store.user_relevance(db, db.execute("SELECT id FROM users WHERE uid = ?", (u0,)).fetchone()[0])["零"][1]
    assert "posts: 「" in why            # the closest posts by meaning, though no word matched


def test_exclude_words_keep_their_posts_out(db):
    posts, truth = corpus()
    load(db, posts)
    run_analysis(db, make_settings(TARGETS))
    rows = db.execute("SELECT explanation FROM user_relevance WHERE target = '铲屎官' AND score >= 0.5").fetchall()
    assert rows and not any("领养" in r[0] for r in rows)


def test_random_interest_users_stay_unassigned_everywhere(db, cli, tmp_path):
    posts, truth = corpus(n_users=300, random_share=0.35)
    load(db, posts)
    summary = run_analysis(db, make_settings(TARGETS))
    stats = dict(db.execute("SELECT u.uid, s.audience_id FROM user_stats s JOIN users u ON u.id = s.user_id"))
    members = dict(db.execute("SELECT u.uid, m.audience_id FROM memberships m JOIN users u ON u.id = m.user_id"))
    rnd = [u for u, g in truth.items() if g == "random"]
    real = [u for u, g in truth.items() if g != "random"]
    unassigned = {u for u, a in stats.items() if a is None}
    assert summary.unassigned == len(unassigned) == result_store.unassigned_count(db)
    assert len(unassigned & set(rnd)) >= 0.6 * len(rnd)
    assert len(unassigned & set(real)) <= 0.1 * len(real)
    assert not unassigned & set(members)                # no membership row
    # never engaged as a member: the planner's member candidates come only from memberships
    cands = engagement.audience_candidates(db, "2000-01-01T00:00:00+00:00", (), 0.0)
    assert cands and not {c["uid"] for c in cands} & unassigned
    # report data layer
    una = reporting.unassigned_summary(db)
    assert una["users"] == len(unassigned) and una["analysed"] == len(stats) and len(una["sample"]) == 10


def test_exports_name_their_scores_and_leave_unassigned_out(cli, tmp_path):
    posts, truth = corpus(n_users=300, random_share=0.35)
    (tmp_path / "huaxiang.toml").write_text(
        '[analysis]\nencoder = "words"\n[[audiences]]\nname = "健身人群"\nseeds = ["举铁"]\n'
        'description = "喜欢健身和运动的年轻人"\n', encoding="utf-8")
    from storage.db import connect

    db = connect(tmp_path / "huaxiang.db")
    load(db, posts)
    db.close()
    code, out, err = cli("analyze")
    assert code == 0, err
    assert "users fit no audience (they post about everything)" in out
    code, out, err = cli("export", "memberships", "-o", "mem.csv")
    assert code == 0, err
    with open(tmp_path / "mem.csv", encoding="utf-8-sig", newline="") as fh:
        mem = list(csv.DictReader(fh))
    assert list(mem[0]) == ["user_id", "audience_id", "membership_score"]
    code, out, err = cli("export", "prospects", "健身人群", "--format", "jsonl", "-o", "p.jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 300
    for col in ("user_id", "name", "relevance", "why", "audience_id", "audience", "tier", "profile_url"):
        assert col in rows[0]
    scores = [r["relevance"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert sum(truth[r["user_id"]] == "fitness" for r in rows[:30]) >= 27
    member_ids = {r["user_id"] for r in mem}
    left_out = [r for r in rows if r["user_id"] not in member_ids]
    assert left_out and all(r["audience_id"] is None and r["tier"] is None for r in left_out)
    code, out, err = cli("export", "prospects", "健身人群", "--format", "xlsx", "-o", "p.xlsx", "--limit", "10")
    assert code == 0, err
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "p.xlsx").active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header[:9] == ["排名", "用户编号", "昵称", "相关度", "相关原因", "人群编号", "人群", "层级",
                          "人群契合度"] and "主页链接" in header      # XLSX headers are Chinese by default ([ui] language)
    assert sheet.max_row == 11
    code, out, err = cli("export", "prospects", "nobody")
    assert code != 0 and "no relevance stored for target 'nobody'" in err
    code, out, err = cli("audiences")
    assert code == 0 and f"unassigned: {len(left_out)} analysed users fit no audience" in out
    code, out, err = cli("status")
    assert code == 0 and f"{len(left_out)} unassigned (fit no audience)" in out


def test_furniture_words_never_name_an_audience(db):
    posts, _ = corpus(furniture=0.4)
    load(db, posts)
    run_analysis(db, make_settings({}))
    auds = audience_store.list_audiences(db)
    assert len(auds) == 5
    for a in auds:
        assert FURNITURE not in a["auto_name"] and FURNITURE not in a["keywords"]


def test_furniture_mask_and_mixed_names():
    # 3 audiences x 4 terms: term 0 used evenly, term 1 by one audience only, term 2 absent from one
    users = np.array([[10, 30, 5, 0], [12, 0, 5, 1], [9, 0, 0, 0]], dtype=float)
    mask = kw.furniture(users, np.array([40, 40, 40]))
    assert mask.tolist() == [True, False, False, False]
    assert kw.auto_name(["健身", "美食"], mixed=True).startswith(kw.MIXED_PREFIX)
    assert not kw.auto_name(["健身", "美食"]).startswith(kw.MIXED_PREFIX)


def test_unfocused_finds_a_crowd_only_when_there_is_one():
    rng = np.random.default_rng(0)
    focused = rng.normal(1.0, 0.3, 700)
    assert not unfocused(focused).any()                  # no crowd: nobody is left out
    crowd = rng.normal(0.03, 0.05, 300)
    mask = unfocused(np.concatenate([focused, crowd]))
    assert mask[700:].mean() > 0.8 and mask[:700].mean() < 0.05


def test_a_margin_bound_keeps_real_users_when_the_crowd_overlaps_them():
    """Words alone: the crowd's spread reaches into the real users; the
    posterior alone leaves out some whose margin is clearly positive."""
    rng = np.random.default_rng(0)
    delta = np.concatenate([rng.normal(1.2, 0.45, 600), rng.normal(0.05, 0.35, 400)])
    loose, bound = unfocused(delta, confidence=0.85), unfocused(delta, confidence=0.85, max_margin=0.2)
    typical = float(np.median(delta[delta >= np.quantile(delta, 0.25)]))
    assert loose[:600].sum() > bound[:600].sum()             # fewer real users left out
    assert not (bound & (delta >= 0.2 * typical)).any()       # nobody with a clear margin
    assert bound[600:].mean() > 0.5 and not (bound & ~loose).any()


def _blobs(rng, centres, sizes, spread=0.12):
    from sklearn.preprocessing import normalize

    return normalize(np.vstack([c + spread * rng.normal(size=(n, len(c))) for c, n in zip(centres, sizes)]))


def test_an_audience_twice_the_usual_size_holding_two_topics_is_split():
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(0)
    centres = normalize(rng.normal(size=(6, 50)))
    centres[5] = normalize((centres[4] + 0.9 * normalize(rng.normal(size=(1, 50)))[0])[None])[0]   # a near topic
    Z = _blobs(rng, centres, [100] * 6)
    labels = np.repeat([0, 1, 2, 3, 4, 4], 100)          # the two near topics merged
    assert np.bincount(split_merged(Z, labels, min_silhouette=0.6)).tolist() == [100, 100, 100, 100, 200]
    split = split_merged(Z, labels, min_silhouette=0.6, oversize_silhouette=0.2)
    assert sorted(np.bincount(split).tolist()) == [100] * 6


def test_a_large_one_topic_audience_is_not_split_for_its_size():
    rng = np.random.default_rng(1)
    from sklearn.preprocessing import normalize

    Z = _blobs(rng, normalize(rng.normal(size=(4, 50))), [300, 100, 100, 100])
    labels = np.repeat([0, 1, 2, 3], [300, 100, 100, 100])
    assert (split_merged(Z, labels, min_silhouette=0.6, oversize_silhouette=0.2) == labels).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_small_audience_keeps_its_own_name(db, seed):
    """Unequal sizes: a 4% audience is found on its own, k auto."""
    rng = random.Random(seed)
    shares = {"fitness": 40, "food": 30, "games": 16, "travel": 10, "pets": 4}
    posts, truth = [], {}
    for u in range(400):
        g = rng.choices(list(shares), weights=list(shares.values()))[0]
        truth[f"u{u}"] = g
        for j in range(rng.randint(4, 9)):
            src = g if rng.random() < 0.85 else rng.choice(list(VOCAB))
            words = rng.sample(VOCAB[src], 4) + rng.sample(FILLER, 2)
            posts.append(Post(platform="test", pid=f"u{u}-{j}", uid=f"u{u}", text="，".join(words),
                              created_at="2026-11-01T10:00:00+08:00"))
    load(db, posts)
    run_analysis(db, make_settings({}))
    members = dict(db.execute("SELECT u.uid, m.audience_id FROM memberships m JOIN users u ON u.id = m.user_id"))
    pets = {u for u, g in truth.items() if g == "pets"}
    best = max({a for a in members.values()}, key=lambda a: len(pets & {u for u, x in members.items() if x == a}))
    got = {u for u, a in members.items() if a == best}
    f1 = 2 * len(got & pets) / (len(got) + len(pets))
    assert f1 >= 0.8


def test_incremental_run_scores_new_users_and_keeps_unassigned_ones_out(db):
    posts, truth = corpus(n_users=300, random_share=0.35)
    load(db, posts)
    s = make_settings(TARGETS)
    run_analysis(db, s)
    assert input_store.unanalysed_user_ids(db) == []          # unassigned users were analysed: not "new" next time
    rng = random.Random(5)
    new = [Post(platform="test", pid=f"new-{j}", uid="newfit", text="，".join(rng.sample(VOCAB["fitness"], 5)),
                created_at="2026-11-20T10:00:00+08:00") for j in range(5)]
    new += [Post(platform="test", pid=f"rnd-{j}", uid="newrnd", text="，".join(rng.sample(VOCAB[g], 5)),
                 created_at="2026-11-20T10:00:00+08:00") for j, g in enumerate(sorted(VOCAB))]
    load(db, new)
    summary = run_analysis(db, s)
    assert summary.mode == "incremental" and summary.placed == 2
    uid = db.execute("SELECT id FROM users WHERE uid = 'newfit'").fetchone()[0]
    score, why = result_store.user_relevance(db, uid)["健身人群"]
    assert score >= 0.5 and "terms: " in why
    assert db.execute("SELECT audience_id FROM memberships WHERE user_id = ?", (uid,)).fetchone() is not None
    rnd = db.execute("SELECT id FROM users WHERE uid = 'newrnd'").fetchone()[0]
    assert result_store.user_relevance(db, rnd)["健身人群"][0] < score
    # the full run's line between members and the unassigned holds for users placed later
    assert db.execute("SELECT audience_id FROM user_stats WHERE user_id = ?", (rnd,)).fetchone()[0] is None
    assert db.execute("SELECT 1 FROM memberships WHERE user_id = ?", (rnd,)).fetchone() is None


def test_report_has_prospects_and_unassigned_users(db):
    from bot.report.sections import build_report

    posts, truth = corpus(n_users=300, random_share=0.35)
    load(db, posts)
    s = make_settings(TARGETS)
    run_analysis(db, s)
    report = build_report(db, s, lang="en")
    section = next(x for x in report.sections if x.id == "prospects")
    blocks = {b.title: b for b in section.blocks}
    assert dict(blocks["Users who fit no audience"].facts)["unassigned"] == result_store.unassigned_count(db) > 0
    fit = dict(blocks["target 健身人群"].facts)
    assert fit["prospects (relevance 0.5+)"] >= 20
    assert blocks["target 健身人群"].tables and blocks["target 健身人群"].tables[0].rows[0][2] > 0
    zh = next(x for x in build_report(db, s).sections if x.id == "prospects")      # Chinese by default
    assert zh.title == "潜在客户" and "不属于任何人群的用户" in {b.title for b in zh.blocks}


def test_an_audience_of_unfocused_users_is_flagged_mixed_not_confidently_named(db, monkeypatch):
    """With leaving users out switched off, the random-interest users form an
    audience of their own: it must say it is mixed."""
    import functools

    from bot.understand import full
    from nlp.cluster import AudienceClusterer

    monkeypatch.setattr(full, "AudienceClusterer", functools.partial(AudienceClusterer, outliers=0))
    posts, truth = corpus(n_users=300, random_share=0.35)
    load(db, posts)
    run_analysis(db, make_settings({}))
    auds = audience_store.list_audiences(db)
    mixed = [a for a in auds if a["mixed"]]
    assert mixed and all(a["auto_name"].startswith(kw.MIXED_PREFIX) for a in mixed)
    for a in mixed:
        uids = [r[0] for r in db.execute("SELECT u.uid FROM memberships m JOIN users u ON u.id = m.user_id"
                                              " WHERE m.audience_id = ?", (a["id"],))]
        assert sum(truth[u] == "random" for u in uids) > 0.6 * len(uids)
    assert not any(a["auto_name"].startswith(kw.MIXED_PREFIX) for a in auds if not a["mixed"])
