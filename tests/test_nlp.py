"""Pure NLP: cleaning, jieba with a user dictionary, c-TF-IDF, clustering, matching, tiers."""

from __future__ import annotations

import random

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from nlp.clean import clean_post, extract_emoticons, extract_mentions, extract_topics, to_simplified
from nlp.cluster import AudienceClusterer, choose_k, lsa
from nlp.features import TermCounter, prune, subword_matrix, tfidf
from nlp.keywords import audience_keywords, auto_name, ctfidf
from nlp.matching import match_clusters
from nlp.relevance import Target, score_user
from nlp.tiers import assign_tiers, percentile_rank
from nlp.tokenize import Tokenizer, default_stopwords


def test_extractors_still_work():
    t = "今天#健身打卡# 和 @小明 一起 [doge][哈哈] #健身打卡#"
    assert extract_topics(t) == ["健身打卡"]
    assert extract_mentions(t) == ["小明"]
    assert extract_emoticons(t) == ["doge", "哈哈"]


def test_clean_post_strips_html_urls_boilerplate_and_keeps_features():
    raw = ('<a href="/n/x">链接</a>今天#健身打卡#练腿 @Keep官方 [doge] 详情 http://t.cn/A6xYz 网页链接 '
           '...展开全文 //@老王: 转发微博 &amp; O网页链接')
    c = clean_post(raw)
    assert c.topics == ["健身打卡"]
    assert c.mentions == ["Keep官方", "老王"] or set(c.mentions) >= {"Keep官方"}
    assert c.emoticons == ["doge"]
    assert c.urls == 1
    for junk in ("http", "t.cn", "网页链接", "全文", "转发微博", "<a", "[doge]", "@", "#"):
        assert junk not in c.text
    assert "健身打卡" in c.text and "练腿" in c.text and "&" in c.text


def test_traditional_and_full_width_are_normalised():
    assert to_simplified("頭髮與後來的體驗") == "头发与后来的体验"
    assert to_simplified("已经是简体") == "已经是简体"
    c = clean_post("ＫＥＥＰ健身１２３，體驗")
    assert c.text.startswith("keep健身123")
    assert "体验" in c.text


def test_tokenizer_user_dict_keeps_seeds_whole_and_drops_stopwords():
    text = clean_post("今天又去撸铁了，我的蛋白粉奶昔真好喝").text
    plain = Tokenizer()(text)
    assert "撸铁" not in plain or "蛋白粉奶昔" not in plain
    tk = Tokenizer(["撸铁", "蛋白粉奶昔"])
    toks = tk(text)
    assert "撸铁" in toks and "蛋白粉奶昔" in toks
    assert not set(toks) & {"的", "了", "我", "又"}
    assert "的" in default_stopwords()
    assert Tokenizer()("iphone se 2016 年 5g") == ["iphone", "se", "5g"]


def test_parallel_tokenising_equals_serial():
    rng = random.Random(1)
    words = ["健身", "火锅", "王者荣耀", "旅行", "今天", "真的", "撸铁"]
    texts = ["".join(rng.choice(words) for _ in range(6)) for _ in range(4500)]
    tk = Tokenizer(["撸铁"])
    assert tk.tokenize_many(texts, workers=2) == [tk(t) for t in texts]


def test_fast_cutter_gives_the_same_words_as_jieba():
    """rjieba does the cutting when installed; the words must be jieba's
    (including letter-digit runs such as m600-02s, which jieba's HMM splits)."""
    pytest.importorskip("rjieba")
    texts = ["东芝m600-02s硬盘报价，索尼dsc-t110 3d卡片机迎中秋", "我每年春节都早早计划着陪老人们吃团年饭",
             "纽曼dvd-d901仅售 3.5% iphone6s和5g v2.0", "今天又去撸铁了，我的蛋白粉奶昔真好喝#王者荣耀#",
             "柳暗花明又一村 考研成功调剂有高招 巴萨4-5负莱万特", "ＫＥＥＰ健身打卡第100天！！！a.b.c hit!"]
    for words in ((), ("撸铁", "蛋白粉奶昔", "王者荣耀")):
        fast = Tokenizer(words)
        slow = Tokenizer(words)
        engine = slow._engine()
        slow._cut = lambda t: engine.cut(t, HMM=True)
        for t in texts:
            c = clean_post(t).text
            assert fast(c) == slow(c), t
    assert "m600" in fast(clean_post(texts[0]).text) and "撸铁" in fast(clean_post(texts[3]).text)


def test_tokenizer_falls_back_to_jieba_without_rjieba(monkeypatch):
    import nlp.tokenize as tokenize_mod

    monkeypatch.setattr(tokenize_mod, "_cutter_with", lambda words: None)
    monkeypatch.setattr(tokenize_mod, "_rjieba_module", lambda: None)
    monkeypatch.setattr(tokenize_mod, "_rjieba_installed", lambda: False)
    assert tokenize_mod.engine_name() == "jieba"
    text = clean_post("今天又去撸铁了，东芝m600-02s硬盘").text
    assert Tokenizer(["撸铁"])(text) == ["撸铁", "东芝", "m600", "02s", "硬盘"]


def _planted(n_per=60, groups=4, seed=0):
    rng = np.random.default_rng(seed)
    vocab = [[f"g{g}w{i}" for i in range(15)] for g in range(groups)]
    common = [f"c{i}" for i in range(30)]
    docs, y = [], []
    for g in range(groups):
        for _ in range(n_per):
            doc = list(rng.choice(vocab[g], 12)) + list(rng.choice(common, 8))
            if rng.random() < 0.3:
                doc += list(rng.choice(vocab[(g + 1) % groups], 3))
            docs.append(doc)
            y.append(g)
    return docs, np.array(y)


def test_ctfidf_finds_distinctive_words():
    docs, y = _planted()
    tc = TermCounter()
    for d in docs:
        tc.add(d)
    X = tc.matrix()
    kws = audience_keywords(X, y, 4, tc.terms(), n=5)
    for g in range(4):
        assert all(w.startswith(f"g{g}w") for w, _ in kws[g])
    W = ctfidf(sp.csr_matrix([[5, 1, 1], [1, 5, 1]]))
    assert W[0, 0] > W[0, 2] and W[1, 1] > W[1, 2]
    assert auto_name([("健身房", 1), ("健身", 0.9), ("增肌", 0.8), ("蛋白粉", 0.5)]) == "健身房·增肌·蛋白粉"


def test_rows_counted_elsewhere_make_the_same_matrix_and_vocabulary():
    """A worker's compact chunk (its own vocabulary) added with add_rows equals add_counts row by row."""
    from collections import Counter

    from nlp.user_posts import SummaryChunk, UserSummary

    rows = [["b", "a", "b"], [], ["c", "a"], ["d", "d", "b", "e"], ["a"]]
    one = TermCounter()
    one.add(["z", "a"])
    for r in rows:
        one.add(r)
    other = TermCounter()
    other.add(["z", "a"])
    summaries = [(i, UserSummary(len(r), Counter(r), [0] * 24, 0.0, None)) for i, r in enumerate(rows)]
    for part in (summaries[:2], summaries[2:]):
        chunk = SummaryChunk.of(part)
        other.add_rows(chunk.terms, chunk.indptr, chunk.ids, chunk.counts)
    a, b = one.matrix(), other.matrix()
    assert one.terms() == other.terms() == ["z", "a", "b", "c", "d", "e"]
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data) and a.shape == b.shape


def test_clustering_recovers_planted_groups_and_chooses_k():
    docs, y = _planted()
    tc = TermCounter()
    for d in docs:
        tc.add(d)
    C, terms = prune(tc.matrix(), tc.terms(), 2, 0.9)
    X, _ = tfidf(C)
    model = AudienceClusterer(k="auto", dims=20).fit(X)
    assert model.k_ == 4
    assert adjusted_rand_score(y, model.labels_) > 0.95
    assert model.coords_.shape == (len(y), 2)
    assert np.all((model.scores_ >= 0) & (model.scores_ <= 1))
    Z, _ = lsa(X, 20)
    assert choose_k(Z, 2, 10).k == 4
    fixed = AudienceClusterer(k=3, dims=20).fit(X)
    assert fixed.k_ == 3


def test_silhouette_from_distances_equals_sklearn():
    from sklearn.metrics import silhouette_score

    from nlp.cluster import cosine_distances_of, silhouette_from_distances

    rng = np.random.default_rng(3)
    S = rng.normal(size=(300, 12)) + np.repeat(rng.normal(size=(3, 12)) * 3, 100, axis=0)
    D = cosine_distances_of(S)
    for labels in (np.repeat([0, 1, 2], 100), rng.integers(0, 5, 300), np.r_[np.zeros(299, int), [7]]):
        assert abs(silhouette_from_distances(D, labels) - silhouette_score(S, labels, metric="cosine")) < 1e-6


def test_threaded_lsa_equals_scikit_learn():
    from sklearn.decomposition import TruncatedSVD

    from nlp.cluster import _threaded_truncated_svd

    for shape in ((300, 900), (900, 300)):       # both of scikit-learn's orientations
        X = sp.random(*shape, density=0.05, format="csr", dtype=np.float32, random_state=4)
        ref = TruncatedSVD(n_components=20, algorithm="randomized", n_iter=5, random_state=0)
        want = ref.fit_transform(X)
        svd = TruncatedSVD(n_components=20, algorithm="randomized", n_iter=5, random_state=0)
        got = _threaded_truncated_svd(svd, X, 2)
        assert np.allclose(got, want, atol=1e-5) and np.allclose(svd.components_, ref.components_, atol=1e-5)


def test_subword_matrix_counts_characters_of_chinese_words():
    M, grams = subword_matrix(["股市", "港股", "#话题", "ab"], max_n=1)
    assert set(grams) == {"股", "市", "港"}
    col = grams.index("股")
    assert M[0, col] == 1 and M[1, col] == 1 and M[2].nnz == 0 and M[3].nnz == 0


def test_match_clusters_keeps_ids_by_overlap_then_terms():
    old = {7: {1, 2, 3, 4}, 9: {5, 6, 7, 8}, 11: {20, 21}}
    new = [{5, 6, 7, 9}, {1, 2, 3}, {30, 31}]
    old_terms = {11: [("火锅", 1.0), ("探店", 0.5)]}
    new_terms = [[("a", 1)], [("b", 1)], [("火锅", 0.9), ("探店", 0.4)]]
    assert match_clusters(new, old, new_terms, old_terms) == {0: 9, 1: 7, 2: 11}
    assert match_clusters([{100}], old) == {}


def test_tiers_split_15_35_50():
    scores = np.linspace(0, 1, 200)
    t = assign_tiers(scores, 0.15, 0.35)
    assert t.count("leader") == 30 and t.count("engaged") == 70 and t.count("potential") == 100
    assert t[-1] == "leader" and t[0] == "potential"
    assert list(percentile_rank(np.array([3.0, 1.0, 2.0]))) == [1.0, 0.0, 0.5]


def test_relevance_score_and_explanation():
    tgt = Target("健身人群", ["健身", "增肌", "撸铁"])
    posts = [(["健身", "打卡"], [], "今天 健身 打卡"), (["增肌", "餐"], ["健身日记"], "增肌 餐"), (["火锅"], [], "火锅")]
    r = score_user(tgt, posts, bio="", tags=[])
    assert 0.5 < r.score < 1 and "2/3 posts" in r.explanation and "健身×2" in r.explanation
    none = score_user(tgt, [(["火锅"], [], "火锅")])
    assert none.score == 0 and none.explanation == "no seed terms"
    bio = score_user(tgt, [(["火锅"], [], "火锅")], bio="健身教练")
    assert bio.score > 0.5 and "bio" in bio.explanation


def test_textrank_keywords_use_campaign_dictionary():
    from nlp.keywords import textrank_keywords

    text = "今天去健身房练了深蹲和卧推，增肌效果不错，晚上喝蛋白粉奶昔，健身房的私教很专业，蛋白粉奶昔好喝"
    words = textrank_keywords(text, 6, Tokenizer(["蛋白粉奶昔"]))
    assert "健身房" in words and "蛋白粉奶昔" in words
