"""End-to-end analysis on a generated corpus: planted groups, stable ids,
renames that survive, tiers, relevance, token cache reuse, history."""

from __future__ import annotations

import os
import random

import pytest
from sklearn.metrics import adjusted_rand_score

from bot.understand.run import run_analysis
from storage import audiences as audience_store
from storage import user_results as result_store
from storage.db import transaction
from storage.posts import upsert_posts
from storage.records import Post, User
from conftest import make_settings

VOCAB = {
    "fitness": ["健身", "增肌", "撸铁", "深蹲", "蛋白粉", "卧推", "减脂", "有氧", "健身房", "私教", "肌肉", "体脂"],
    "food": ["火锅", "烧烤", "奶茶", "甜品", "探店", "美食", "小龙虾", "麻辣烫", "烤肉", "蛋糕", "餐厅", "外卖"],
    "games": ["王者荣耀", "上分", "开黑", "英雄", "段位", "皮肤", "排位", "手游", "电竞", "战队", "副本", "装备"],
    "travel": ["旅行", "机票", "酒店", "景点", "自驾", "签证", "攻略", "海边", "古镇", "民宿", "行程", "打卡"],
}
FILLER = ["今天", "真的", "感觉", "朋友", "周末", "终于", "一起", "推荐", "大家", "开心", "分享", "准备"]
TOPICS = {"fitness": "健身打卡", "food": "吃货日常", "games": "王者荣耀", "travel": "旅行日记"}


def make_corpus(n_users: int = 240, seed: int = 7, start: int = 0) -> tuple[list[Post], dict[str, str]]:
    """Users each with one interest; posts mostly from that vocabulary."""
    rng = random.Random(seed)
    groups = sorted(VOCAB)
    posts: list[Post] = []
    truth: dict[str, str] = {}
    for u in range(start, start + n_users):
        g = groups[u % len(groups)]
        uid = f"u{u}"
        truth[uid] = g
        followers = int(rng.paretovariate(1.2) * 50)
        author = User(platform="test", uid=uid, name=f"用户{u}", followers=followers,
                      bio=("热爱" + rng.choice(VOCAB[g])) if rng.random() < 0.3 else None)
        for j in range(rng.randint(3, 8)):
            src = g if rng.random() < 0.85 else rng.choice([x for x in groups if x != g])
            words = rng.sample(VOCAB[src], 4) + rng.sample(FILLER, 2)
            rng.shuffle(words)
            text = "，".join(words)
            topics = []
            if rng.random() < 0.3:
                text = f"#{TOPICS[src]}# " + text
                topics = [TOPICS[src]]
            if rng.random() < 0.1:
                text += " http://t.cn/A6x" + str(j) + " 网页链接"
            hour = (8 + (u % 4) * 3 + rng.randint(0, 2)) % 24
            posts.append(Post(platform="test", pid=f"{uid}-{j}", uid=uid, text=text, topics=topics,
                              created_at=f"2026-11-{1 + j:02d}T{hour:02d}:{rng.randint(0, 59):02d}:00+08:00",
                              likes=rng.randint(0, 30), reposts=rng.randint(0, 5), comments=rng.randint(0, 8),
                              author=author))
    return posts, truth


def load(db, posts):
    with transaction(db):
        upsert_posts(db, posts)


SETTINGS = {"audiences": [{"name": "健身人群", "seeds": ["健身", "增肌", "撸铁"]},
                          {"name": "吃货", "seeds": ["火锅", "探店"]}]}


@pytest.fixture
def corpus_db(db):
    posts, truth = make_corpus()
    load(db, posts)
    return db, truth


def _labels(db, truth):
    uid_of = dict(db.execute("SELECT id, uid FROM users").fetchall())
    got = {u: a for u, a in db.execute("SELECT user_id, audience_id FROM memberships")}
    keys = sorted(got, key=lambda i: uid_of[i])
    return [truth[uid_of[i]] for i in keys], [got[i] for i in keys]


def test_recovers_planted_groups_with_auto_k(corpus_db):
    db, truth = corpus_db
    s = make_settings(SETTINGS)
    summary = run_analysis(db, s, k="auto")
    assert summary.k == 4
    assert summary.n_users == 240
    y, pred = _labels(db, truth)
    assert adjusted_rand_score(y, pred) > 0.9
    counts = summary.as_counts()
    assert counts["audiences"] == 4 and counts["users"] == 240 and counts["posts"] == summary.n_posts
    names = {a.auto_name for a in summary.audiences}
    assert any("健身" in n or "增肌" in n or "撸铁" in n for n in names)
    a = audience_store.get_audience(db, summary.audiences[0].id)
    assert a["keywords"] and a["sample_posts"] and a["influencers"]
    assert sum(a["active_hours"]) > 0 and len(a["active_hours"]) == 24
    assert set(a["tier_counts"]) == {"leader", "engaged", "potential"}


def test_fixed_k(corpus_db):
    db, _ = corpus_db
    summary = run_analysis(db, make_settings(SETTINGS), k=2)
    assert summary.k == 2 and len(summary.audiences) == 2


def test_stable_ids_rename_survives_and_history(corpus_db):
    db, truth = corpus_db
    s = make_settings(SETTINGS)
    first = run_analysis(db, s)
    ids = sorted(a.id for a in first.audiences)
    fit_id = next(a.id for a in first.audiences if "健身" in " ".join(a.keywords) or "增肌" in " ".join(a.keywords))
    assert audience_store.rename_audience(db, fit_id, "我的健身粉")
    more, _ = make_corpus(n_users=20, seed=99, start=1000)
    load(db, more)
    second = run_analysis(db, s)
    assert sorted(a.id for a in second.audiences) == ids
    renamed = audience_store.get_audience(db, fit_id)
    assert renamed["name"] == "我的健身粉" and renamed["display_name"] == "我的健身粉"
    assert renamed["auto_name"]
    hist = audience_store.audience_history(db, fit_id)
    assert [h["run_id"] for h in hist] == [first.run_id, second.run_id]
    assert hist[1]["joined"] >= 1 and hist[1]["size"] == renamed["size"]


def test_tiers_roughly_15_35_50(corpus_db):
    db, _ = corpus_db
    run_analysis(db, make_settings(SETTINGS))
    for a in audience_store.list_audiences(db):
        tc = a["tier_counts"]
        n = a["size"]
        assert abs(tc["leader"] / n - 0.15) < 0.03
        assert abs(tc["engaged"] / n - 0.35) < 0.03
        members = audience_store.audience_members(db, a["id"])
        assert len(members) == n
        assert members[0]["tier"] == "leader"
        assert all(0 <= m["score"] <= 1 for m in members)


def test_relevance_explained(corpus_db):
    db, truth = corpus_db
    run_analysis(db, make_settings(SETTINGS))
    uid_of = dict(db.execute("SELECT uid, id FROM users").fetchall())
    fit_user = next(u for u, g in truth.items() if g == "fitness")
    game_user = next(u for u, g in truth.items() if g == "games")
    r = result_store.user_relevance(db, uid_of[fit_user])
    assert set(r) == {"健身人群", "吃货"}
    score, why = r["健身人群"]
    assert score > 0.5 and ("健身" in why or "增肌" in why or "撸铁" in why) and "posts" in why
    assert result_store.user_relevance(db, uid_of[game_user])["健身人群"][0] < score
    top = result_store.target_prospects(db, "健身人群", limit=20)
    assert sum(truth[p["uid"]] == "fitness" for p in top) >= 18
    stats = result_store.user_stats(db, uid_of[fit_user])
    assert len(stats["active_hours"]) == 24 and stats["peak_hours"]
    assert stats["x"] is not None and stats["y"] is not None


def test_token_cache_reused(corpus_db, monkeypatch):
    db, _ = corpus_db
    s = make_settings(SETTINGS)
    first = run_analysis(db, s)
    assert first.tokenized == first.n_posts and first.reused == 0
    more, _ = make_corpus(n_users=5, seed=3, start=2000)
    load(db, more)
    cut = []
    from nlp import tokenize

    real = tokenize.Tokenizer.process_post
    monkeypatch.setattr(tokenize.Tokenizer, "process_post", lambda self, t: cut.append(t) or real(self, t))
    second = run_analysis(db, s)
    assert second.tokenized == len(more) == len(cut)
    assert second.reused == first.n_posts
    # a count-only change keeps the tokens; a text edit re-cuts just that post
    with transaction(db):
        db.execute("UPDATE posts SET likes = 999, content_hash = 'x' WHERE pid = 'u0-0'")
        db.execute("UPDATE posts SET text = '健身 增肌 新的内容', content_hash = 'y' WHERE pid = 'u1-0'")
    cut.clear()
    third = run_analysis(db, s)
    assert third.tokenized == 1 and cut == ["健身 增肌 新的内容"]


def test_dictionary_change_recuts_only_affected_posts(corpus_db):
    db, _ = corpus_db
    run_analysis(db, make_settings(SETTINGS))
    raw = dict(SETTINGS, analysis={"user_dict": ["蛋白粉奶昔"]})
    with transaction(db):
        db.execute("UPDATE posts SET text = text || '，蛋白粉奶昔' WHERE pid = 'u0-1'")
    summary = run_analysis(db, make_settings(raw))
    assert summary.tokenized == 1
    tokens = db.execute("SELECT t.tokens FROM post_tokens t JOIN posts p ON p.id = t.post_id"
                             " WHERE p.pid = 'u0-1'").fetchone()[0]
    assert "蛋白粉奶昔" in tokens.split()


def test_nothing_to_analyse(db):
    from bot.errors import HuaxiangError

    with pytest.raises(HuaxiangError, match="nothing to analyse"):
        run_analysis(db, make_settings({}))
    assert db.execute("SELECT status FROM analysis_runs").fetchone()[0] == "failed"


def test_small_change_places_new_users_without_reclustering(corpus_db):
    db, truth = corpus_db
    s = make_settings(SETTINGS)
    first = run_analysis(db, s)
    assert first.mode == "full"
    more, more_truth = make_corpus(n_users=4, seed=11, start=5000)
    load(db, more)
    second = run_analysis(db, s)
    assert second.mode == "incremental" and second.tokenized == len(more)
    assert sorted(a.id for a in second.audiences) == sorted(a.id for a in first.audiences)
    assert second.n_users == 244
    # the new users land with the old users of their interest
    uid_of = dict(db.execute("SELECT uid, id FROM users").fetchall())
    aud = dict(db.execute("SELECT user_id, audience_id FROM memberships").fetchall())
    for uid, g in more_truth.items():
        peers = [aud[uid_of[u]] for u, gg in truth.items() if gg == g]
        assert aud[uid_of[uid]] == max(set(peers), key=peers.count)
        assert result_store.user_stats(db, uid_of[uid]) is not None
        assert set(result_store.user_relevance(db, uid_of[uid])) == {"健身人群", "吃货"}
    assert sum(h["joined"] for a in second.audiences for h in audience_store.audience_history(db, a.id)[-1:]) == 4
    full = run_analysis(db, s, full=True)
    assert full.mode == "full" and full.n_users == 244


def test_corpus_topics_join_dictionary_and_targets_attach_only_where_relevant(corpus_db):
    db, _ = corpus_db
    run_analysis(db, make_settings(SETTINGS))
    toks = " ".join(r[0] for r in db.execute("SELECT tokens FROM post_tokens"))
    assert "王者荣耀" in toks.split()      # a frequent #topic# stays one word
    by_target = {}
    for a in audience_store.list_audiences(db):
        by_target.setdefault(a["target"], []).append(" ".join(a["keywords"]))
    assert len(by_target.get("健身人群", [])) == 1 and "增肌" in by_target["健身人群"][0]
    assert len(by_target.get("吃货", [])) == 1
    assert len(by_target.get(None, [])) == 2


@pytest.mark.parametrize("n_users", [1, 2, 5])
def test_tiny_inputs(db, n_users):
    posts, _ = make_corpus(n_users=n_users, seed=2)
    load(db, posts)
    s = make_settings(SETTINGS)
    summary = run_analysis(db, s)
    assert summary.n_users == n_users and 1 <= summary.k <= n_users
    assert db.execute("SELECT COUNT(*) FROM memberships").fetchone()[0] == n_users
    again = run_analysis(db, s)
    assert again.n_users == n_users


def test_profiles_summed_up_by_the_workers_equal_those_built_here(corpus_db, monkeypatch):
    """A full run has its cutting workers sum the users up, a few users per
    chunk; the profiles are those one process builds, row for row."""
    import numpy as np

    import bot.understand.caches as caches
    import bot.understand.profiles as profiles

    db, _ = corpus_db
    s = make_settings(SETTINGS)
    tk = caches.build_tokenizer(s, db)
    caches.update_token_cache(db, tk, workers=1)
    here = profiles.build_profiles(db, s, tk)
    with tk.pool(2) as workers:
        assert workers.parallel
        monkeypatch.setattr(workers, "chunk_size", lambda n: 30)      # many chunks of a few users each
        there = profiles.build_profiles(db, s, tk, workers=workers)
    assert there.user_ids == here.user_ids and len(here.user_ids) == 240
    assert there.terms == here.terms
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(there.counts, name), getattr(here.counts, name)), name
    assert np.array_equal(there.hours, here.hours) and np.array_equal(there.n_posts, here.n_posts)
    assert np.array_equal(there.engagement, here.engagement)
    assert there.last_post == here.last_post and there.total_posts == here.total_posts


def _cut_in_one_process(tmp_path, settings):
    """The same corpus in a database of its own, its words cut in this process alone."""
    import bot.understand.caches as caches
    from storage.db import connect

    other = connect(tmp_path / "serial.db")
    posts, _ = make_corpus()
    load(other, posts)
    caches.update_token_cache(other, caches.build_tokenizer(settings, other), workers=1)
    return other


def test_a_first_analysis_cut_user_by_user_equals_cutting_then_profiling(corpus_db, tmp_path, monkeypatch):
    """With no words cut yet the workers cut whole users and sum them up on
    the way, storing the words only after all are cut: the same token cache
    and the same profiles as cutting first and reading the words back."""
    import numpy as np

    import bot.understand.caches as caches
    import bot.understand.profiles as profiles
    import bot.understand.summaries as summaries
    import nlp.tokenize as tokenize
    from bot.understand.summaries import FirstCut

    db, _ = corpus_db
    s = make_settings(SETTINGS)
    monkeypatch.setattr(tokenize, "PARALLEL_MIN", 100)
    monkeypatch.setattr(summaries, "HOLD_MAX_ROWS", 300)         # some rows stored at once, the rest held
    tk = caches.build_tokenizer(s, db)
    first = FirstCut(db, s, tk, lambda: True)
    with caches.cutting_workers(db, tk, workers=2) as workers:
        assert workers.parallel
        monkeypatch.setattr(workers, "chunk_size", lambda n: 40)      # many chunks of a few users each
        done, reused, ids = caches.update_token_cache(db, tk, runner=workers, first_cut=first)
        first.settle()
    assert done == len(ids) == db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] and reused == 0
    cut = db.execute("SELECT post_id, text_hash, tokens, clean, topics, mentions FROM post_tokens ORDER BY post_id").fetchall()
    other = _cut_in_one_process(tmp_path, s)
    assert cut == other.execute("SELECT post_id, text_hash, tokens, clean, topics, mentions FROM post_tokens"
                                " ORDER BY post_id").fetchall()
    here, there = profiles.build_profiles(other, s, tk), first.profiles
    assert there.user_ids == here.user_ids and there.terms == here.terms
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(there.counts, name), getattr(here.counts, name)), name
    assert np.array_equal(there.hours, here.hours) and there.last_post == here.last_post


def test_each_worker_runs_once_in_every_worker():
    """each_worker hands one call to every worker process, never two to one."""
    import os

    from nlp.tokenize import Tokenizer

    with Tokenizer().pool(2) as workers:
        for _ in range(3):
            pids = [h.get(timeout=60) for h in workers.each_worker(os.getpid)]
            assert len(set(pids)) == 2 and os.getpid() not in pids


def test_parallel_pipelined_token_cache_equals_serial(corpus_db, tmp_path, monkeypatch):
    """Several chunks cut and stored by the worker processes give the same cache as one process."""
    import bot.understand.caches as caches
    import nlp.tokenize as tokenize

    db, _ = corpus_db
    s = make_settings(SETTINGS)
    monkeypatch.setattr(tokenize, "PARALLEL_MIN", 100)
    tk = caches.build_tokenizer(s, db)
    done, reused, ids = caches.update_token_cache(db, tk, workers=2)
    assert done == len(ids) == db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] and reused == 0
    parallel = db.execute("SELECT post_id, tokens, clean, topics FROM post_tokens ORDER BY post_id").fetchall()
    other = _cut_in_one_process(tmp_path, s)
    serial = other.execute("SELECT post_id, tokens, clean, topics FROM post_tokens ORDER BY post_id").fetchall()
    assert parallel == serial


def test_profiles_do_not_depend_on_the_string_hash(tmp_path):
    """Two processes with different string hashes (PYTHONHASHSEED) make the
    same term columns and character columns in the same order: the order
    terms are first seen in decides the matrix columns (and so the
    clustering), so no set's order may decide it."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from storage.db import connect

    posts, _ = make_corpus(n_users=40)
    posts.append(Post(platform="test", pid="multi", uid="u0", text="#健身打卡# #吃货日常# #旅行日记# 今天真开心",
                      topics=["旅行日记", "王者荣耀", "健身打卡"], created_at="2026-11-20T10:00:00+08:00"))
    path = tmp_path / "hash.db"
    db = connect(path)
    load(db, posts)
    db.close()
    code = ("import json, sys\n"
            "from config import Settings\n"
            "from storage.db import connect\n"
            "from bot.understand.caches import build_tokenizer, update_token_cache\n"
            "from bot.understand.profiles import build_profiles\n"
            "from nlp.features import subword_matrix\n"
            "db, s = connect(sys.argv[1]), Settings()\n"
            "tk = build_tokenizer(s, db)\n"
            "update_token_cache(db, tk, workers=1)\n"
            "terms = build_profiles(db, s, tk).terms\n"
            "print(json.dumps([terms, subword_matrix(terms, max_n=2)[1]], ensure_ascii=False))\n")
    root = Path(__file__).resolve().parent.parent
    runs = [subprocess.run([sys.executable, "-c", code, str(path)], cwd=root, check=True, capture_output=True,
                           text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")]
    terms, grams = json.loads(runs[0])
    assert "#王者荣耀" in terms and "荣耀" in grams
    assert runs[0] == runs[1] == runs[2]
