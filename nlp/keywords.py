"""Keywords that make a group distinctive: class-based TF-IDF (c-TF-IDF).

Why c-TF-IDF rather than plain TF-IDF per audience: treating all of an
audience's text as one document and weighing each word by how much more
often it appears there than across all audiences surfaces what sets the
audience apart (增肌, 蛋白粉) instead of what everybody says (今天, 分享).
Formula as in BERTopic: ``tf(t, c) / |c| * log(1 + A / f(t))`` with A the
average number of words per class and f(t) the word's total frequency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from nlp.features import is_word

# Words that are distinctive by count but say nothing about an audience:
# quantities (一个月, 无数次, 三天), demonstratives (这家, 那个) and generic
# adverbs/adjectives (明显, 真的). Checked on every keyword shown or stored.
_QUANTITY = re.compile(r"^[一二两三四五六七八九十百千万几无数多半整每好]+[个次天年月周日号家位种回遍份点分秒岁块元条件趟杯口下把张本场顿眼台部双套款瓶支盒袋包件篇段]+[月天年]?$")
_DEMONSTRATIVE = re.compile(r"^[这那哪每某本该此][个家位次种样些天年月回里边儿]?$")
_GENERIC = frozenset("明显 真的 确实 其实 已经 一直 突然 终于 好像 感觉 有点 比较 还是 可能 一定 完全 直接 简直 居然 竟然 "
                     "特别 非常 超级 真是 实在 基本 根本 经常 总是 马上 立刻 刚刚 最近 当时 然后 而且 但是 不过 所以 因为 "
                     "这样 那样 这么 那么 怎么 什么 一下 一点 一些 有些 很多 好多 大家 自己 东西 事情 时候 地方 "
                     "今天 明天 昨天 今晚 早上 晚上 上午 下午 中午 周末 最后 开始 出来 起来".split())


def is_junk_keyword(word: str) -> bool:
    """True for a word no marketer wants as an audience keyword (see the patterns above)."""
    w = (word or "").strip()
    return not w or w in _GENERIC or bool(_QUANTITY.match(w)) or bool(_DEMONSTRATIVE.match(w))


def class_term_counts(X: sp.spmatrix, labels: np.ndarray, k: int) -> sp.csr_matrix:
    """Sum the rows of X (counts) per class: a k x terms matrix."""
    n = X.shape[0]
    onehot = sp.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(k, n))
    return (onehot @ X).tocsr()


def ctfidf(class_counts: sp.spmatrix) -> sp.csr_matrix:
    """c-TF-IDF weights (k x terms) from per-class term counts."""
    C = sp.csr_matrix(class_counts, dtype=np.float64)
    totals = np.asarray(C.sum(axis=1)).ravel()
    totals[totals == 0] = 1.0
    tf = sp.diags(1.0 / totals) @ C
    freq = np.asarray(C.sum(axis=0)).ravel()
    A = totals.mean()
    idf = np.log(1.0 + A / np.maximum(freq, 1e-9))
    return (tf @ sp.diags(idf)).tocsr()


def furniture(users_per_term: sp.spmatrix, sizes: np.ndarray, max_ratio: float = 2.5,
              min_present: float = 0.8) -> np.ndarray:
    """Term indices that are spread evenly over all audiences: a mask.

    Why: headline furniture (组图, 图文, 男子) and a platform's boilerplate
    are used by a similar share of every audience; c-TF-IDF still ranks
    them high in whichever audience uses them a little more, and they
    made names like "男子·女子·组图". A term is furniture when the audiences
    using it at all are at least ``min_present`` of them and its highest
    per-audience usage rate is under ``max_ratio`` times its median rate.
    ``users_per_term``: audiences x terms, members using each term.
    """
    U = sp.csr_matrix(users_per_term, dtype=np.float64)
    k = U.shape[0]
    if k < 3:
        return np.zeros(U.shape[1], dtype=bool)
    rates = (sp.diags(1.0 / np.maximum(np.asarray(sizes, dtype=np.float64), 1.0)) @ U).toarray()
    present = (rates > 0).mean(axis=0)
    med = np.median(rates, axis=0)
    top = rates.max(axis=0)
    return (present >= min_present) & (med > 0) & (top < max_ratio * np.maximum(med, 1e-12))


def top_terms(weights: sp.spmatrix, terms: Sequence[str], row: int, n: int = 10, min_len: int = 2,
              words_only: bool = True, skip: np.ndarray | None = None) -> list[tuple[str, float]]:
    """The n highest-weighted terms of one row, readable words first-class:
    marked features (#topic, @mention, tag:) are skipped with ``words_only``
    and Chinese words shorter than ``min_len`` characters are skipped."""
    r = weights.getrow(row)
    order = np.argsort(-r.data, kind="stable")
    out: list[tuple[str, float]] = []
    for j in order:
        if skip is not None and skip[r.indices[j]]:
            continue
        t = terms[r.indices[j]]
        if words_only and not is_word(t):
            continue
        if len(t) < min_len or is_junk_keyword(t):
            continue
        out.append((t, float(r.data[j])))
        if len(out) >= n:
            break
    return out


def audience_keywords(X_counts: sp.spmatrix, labels: np.ndarray, k: int, terms: Sequence[str],
                      n: int = 10, skip: np.ndarray | None = None) -> list[list[tuple[str, float]]]:
    """Distinctive keywords of each class 0..k-1, best first, with c-TF-IDF
    weights; terms in ``skip`` (a mask, e.g. ``furniture``) never appear."""
    W = ctfidf(class_term_counts(X_counts, labels, k))
    return [top_terms(W, terms, c, n, skip=skip) for c in range(k)]


MIXED_PREFIX = "混合："


def auto_name(keywords: Sequence[tuple[str, float]] | Sequence[str], n: int = 3, mixed: bool = False) -> str:
    """A readable default name from the top distinctive keywords: 健身·增肌·蛋白粉.
    A ``mixed`` audience (members who barely hang together) says so first:
    混合：健身·美食·旅行, so nobody takes it for one interest."""
    words = [k[0] if isinstance(k, (tuple, list)) else k for k in keywords]
    picked: list[str] = []
    for w in words:
        if any(w in p or p in w for p in picked):
            continue   # skip 健身 after 健身房: says the same thing twice
        picked.append(w)
        if len(picked) == n:
            break
    name = "·".join(picked) if picked else "未命名"
    return MIXED_PREFIX + name if mixed else name


def row_keywords(X_counts: sp.spmatrix, idf: np.ndarray, terms: Sequence[str], row: int, n: int = 5) -> list[str]:
    """A single user's own top words by TF-IDF (for user_stats.keywords)."""
    if sp.isspmatrix_csr(X_counts):
        # Slicing the CSR arrays directly: getrow() builds a matrix per call,
        # which dominated writing a profile per user.
        lo, hi = X_counts.indptr[row], X_counts.indptr[row + 1]
        data, indices = X_counts.data[lo:hi], X_counts.indices[lo:hi]
    else:
        r = X_counts.getrow(row)
        data, indices = r.data, r.indices
    if len(data) == 0:
        return []
    w = (1.0 + np.log(data)) * idf[indices]
    out = []
    for j in np.argsort(-w, kind="stable"):
        t = terms[indices[j]]
        if is_word(t) and len(t) >= 2:
            out.append(t)
            if len(out) >= n:
                break
    return out


@dataclass
class Descriptors:
    """What describes each audience, from its members' term counts."""
    users_per_term: sp.csr_matrix                 # k x terms: members using each term
    words: list[list[tuple[str, float]]]          # distinctive keywords per audience, best first
    weights: sp.csr_matrix                        # k x terms c-TF-IDF

    def top_marked(self, c: int, cols: np.ndarray, terms: Sequence[str], prefix: str,
                   m: int = 8) -> list[dict[str, Any]]:
        """Audience ``c``'s most used marked features (``#topic``, ``@mention``)
        among columns ``cols``, with how many members use each."""
        if len(cols) == 0:
            return []
        row = self.users_per_term.getrow(c).toarray().ravel()[cols]
        order = np.argsort(-row, kind="stable")[:m]
        return [{"name": terms[cols[j]][len(prefix):], "users": int(row[j])} for j in order if row[j] > 0]

    def top_weighted(self, c: int, n: int) -> list[tuple[int, float]]:
        """(term column, weight) of audience ``c``'s ``n`` heaviest c-TF-IDF terms."""
        r = self.weights.getrow(c)
        order = np.argsort(-r.data, kind="stable")[:n]
        return [(int(r.indices[j]), round(float(r.data[j]), 6)) for j in order]


def describe(C: sp.csr_matrix, labels: np.ndarray, assigned: np.ndarray, sizes: Sequence[int],
             terms: Sequence[str]) -> Descriptors:
    """Users per term per audience, keywords and c-TF-IDF, from members only
    (rows ``assigned``): unassigned users describe no audience."""
    k = len(sizes)
    Ca, la = (C, labels) if len(assigned) == C.shape[0] else (C[assigned], labels[assigned])
    Cb = sp.csr_matrix((np.ones(Ca.nnz, dtype=np.float32), Ca.indices, Ca.indptr), shape=Ca.shape)
    users_per_term = class_term_counts(Cb, la, k).tocsr()
    skip = furniture(users_per_term, np.asarray(sizes))
    words = audience_keywords(Ca, la, k, terms, n=12, skip=skip)
    return Descriptors(users_per_term, words, ctfidf(class_term_counts(Ca, la, k)))


def prefixed_columns(terms: Sequence[str], prefix: str) -> np.ndarray:
    """Columns of the terms that carry a feature prefix (``#``, ``@``)."""
    return np.array([i for i, t in enumerate(terms) if t.startswith(prefix)], dtype=np.int64)


def representative_posts(users: Sequence[int], posts_of: Mapping[int, Sequence[tuple[int, str]]],
                         keywords: set[str], n: int = 5) -> list[int]:
    """Post ids that show an audience: for each user in order (the most central
    first), the post (id, space-joined tokens) using the most of the
    audience's keywords, the earliest stored on ties; at most ``n``."""
    chosen: list[int] = []
    for uid in users:
        posts = posts_of.get(uid)
        if not posts:
            continue
        chosen.append(max(posts, key=lambda p: (len(keywords.intersection(p[1].split())), -p[0]))[0])
        if len(chosen) >= n:
            break
    return chosen


def textrank_keywords(text: str, n: int = 10, tokenizer=None) -> list[str]:
    """jieba's TextRank over one text (for a post or a bio), keeping
    nouns/verbs; uses the campaign tokenizer's dictionary when given."""
    import jieba.analyse

    tr = jieba.analyse.TextRank()
    if tokenizer is not None:
        import jieba.posseg

        tr.tokenizer = tr.postokenizer = jieba.posseg.POSTokenizer(tokenizer._engine())
    return tr.textrank(text, topK=n)
