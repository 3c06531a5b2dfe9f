"""User profiles as sparse term-count rows, built in a streaming way.

Why a growing vocabulary instead of hashing: the same matrix feeds the
clustering *and* the readable, per-audience keywords (c-TF-IDF), so every
column must map back to a word. Rows are added chunk by chunk, so a million
posts never have to be in memory as token lists at once.

A profile's terms are the user's jieba words, plus marked features that
cluster well and read well: ``#topic``, ``@mention`` and ``tag:...`` (the
user's self-chosen tags); bio words count as ordinary words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import filterfalse

import numpy as np
import scipy.sparse as sp

from nlp.user_posts import MENTION_PREFIX, TAG_PREFIX, TOPIC_PREFIX



def is_word(term: str) -> bool:
    """A plain jieba word (not a topic, mention or tag feature)."""
    return not (term.startswith(TOPIC_PREFIX) or term.startswith(MENTION_PREFIX) or term.startswith(TAG_PREFIX))


class TermCounter:
    """Accumulates rows of term counts over a vocabulary that grows as it goes."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._indptr = [0]
        self._indices: list[np.ndarray] = []
        self._data: list[np.ndarray] = []
        self._nnz = 0

    def add(self, terms: Iterable[str]) -> None:
        """Append one row (one user's terms; repeats count)."""
        # Counting first (Counter's C loop) and mapping with C-level iterators
        # keeps a Python-level step out of each of a million term occurrences;
        # first-seen order is kept, so vocabulary and matrix are unchanged.
        self.add_counts(Counter(terms))

    def add_counts(self, counts: Mapping[str, int | float]) -> None:
        """Append one row from counts already made (term -> count, in first-seen order)."""
        if counts:
            vocab = self.vocab
            n = len(counts)
            new = list(filterfalse(vocab.__contains__, counts))
            if new:
                vocab.update(zip(new, range(len(vocab), len(vocab) + len(new))))
            ids = np.fromiter(map(vocab.__getitem__, counts), dtype=np.int32, count=n)
            c = np.fromiter(counts.values(), dtype=np.float32, count=n)
            order = np.argsort(ids, kind="stable")
            self._indices.append(ids[order])
            self._data.append(c[order])
            self._nnz += n
        self._indptr.append(self._nnz)

    def add_rows(self, terms: Sequence[str], indptr: Sequence[int], ids: Sequence[int],
                 counts: Sequence[float]) -> None:
        """Append rows counted elsewhere over their own vocabulary ``terms``
        (first-seen order; row r is ``terms[ids[k]]`` with ``counts[k]`` for k
        in ``indptr[r]:indptr[r+1]``): the same rows and vocabulary as
        ``add_counts`` of each row in turn, with a lookup per distinct term
        instead of one per (row, term)."""
        vocab = self.vocab
        new = list(filterfalse(vocab.__contains__, terms))
        if new:
            vocab.update(zip(new, range(len(vocab), len(vocab) + len(new))))
        to_global = np.fromiter(map(vocab.__getitem__, terms), dtype=np.int32, count=len(terms))
        ptr = np.asarray(indptr, dtype=np.int64)
        cols = to_global[np.asarray(ids, dtype=np.int64)]
        rows = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
        order = np.argsort(rows * len(vocab) + cols, kind="stable")     # by row, then column
        self._indices.append(cols[order])
        self._data.append(np.asarray(counts, dtype=np.float32)[order])
        self._indptr.extend((ptr[1:] + self._nnz).tolist())
        self._nnz += len(cols)

    @property
    def n_rows(self) -> int:
        return len(self._indptr) - 1

    def matrix(self) -> sp.csr_matrix:
        indices = np.concatenate(self._indices) if self._indices else np.zeros(0, np.int32)
        data = np.concatenate(self._data) if self._data else np.zeros(0, np.float32)
        return sp.csr_matrix((data, indices, np.asarray(self._indptr, dtype=np.int64)),
                             shape=(self.n_rows, max(len(self.vocab), 1)))

    def terms(self) -> list[str]:
        out = [""] * len(self.vocab)
        for t, i in self.vocab.items():
            out[i] = t
        return out


def prune(X: sp.csr_matrix, terms: Sequence[str], min_df: int = 2, max_df: float = 0.5) -> tuple[sp.csr_matrix, list[str]]:
    """Drop terms used by fewer than ``min_df`` rows or by more than ``max_df``
    of them: neither can tell audiences apart, and they cost memory."""
    df = np.bincount(X.indices, minlength=X.shape[1])
    n = X.shape[0]
    keep = (df >= min(min_df, max(1, n // 2))) & (df <= max(max_df * n, min_df))
    idx = np.flatnonzero(keep)
    return X[:, idx].tocsr(), [terms[i] for i in idx]


def tfidf(X: sp.csr_matrix, idf: np.ndarray | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sublinear TF-IDF with L2-normalised rows (as scikit-learn's
    TfidfTransformer(sublinear_tf=True)), returning the idf for reuse.

    Works on one float32 copy of X, in place, so a million users' rows do
    not need several copies at once.
    """
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    X.sum_duplicates()
    if idf is None:
        df = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
        idf = np.log((1 + X.shape[0]) / (1 + df)) + 1.0
    np.log(X.data, out=X.data)
    X.data += 1.0
    idf32 = idf.astype(np.float32)
    step = 4_000_000          # chunks keep the temporary index->idf array small
    for i in range(0, X.nnz, step):
        X.data[i:i + step] *= idf32[X.indices[i:i + step]]
    _l2_inplace(X)
    return X, idf


def _l2_inplace(X: sp.csr_matrix) -> None:
    """Scale rows to unit length without copying (scikit-learn's in-place CSR routine)."""
    from sklearn.preprocessing import normalize

    normalize(X, norm="l2", copy=False)


def subword_matrix(terms: Sequence[str], max_n: int = 2) -> tuple[sp.csr_matrix, list[str]]:
    """A terms x character-n-gram matrix for the Chinese words among ``terms``.

    Why: headlines and posts are short, so two users rarely share many whole
    words, but they share morphemes (股 in 股市/港股/股价). Multiplying a
    user x word count matrix by this matrix gives within-word character
    n-gram counts without cutting any text again, which keeps re-analysis
    fast. Marked features (topics, mentions, tags) get no n-grams.
    """
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, t in enumerate(terms):
        if not is_word(t) or not ("\u4e00" <= t[0] <= "\u9fff"):
            continue
        grams = list(t) if max_n == 1 else [t[j:j + n] for n in range(1, min(max_n, len(t) - 1 or 1) + 1)
                                            for j in range(len(t) - n + 1)]
        # Each gram once, in order: the columns come out the same in every process
        # (a set's order follows the string hash, which changes per process).
        for g in dict.fromkeys(grams):
            rows.append(i)
            cols.append(vocab.setdefault(g, len(vocab)))
    M = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(terms), max(len(vocab), 1)))
    grams_list = [""] * len(vocab)
    for g, j in vocab.items():
        grams_list[j] = g
    return M, grams_list


class ProfileVectorizer:
    """Count rows -> clustering features, scikit-learn style.

    ``fit_transform(counts, terms)`` prunes rare/ubiquitous terms, weights
    words by sublinear TF-IDF and adds within-word character counts (TF-IDF,
    ``subword_weight``), rows L2-normalised. ``transform(counts, terms)`` maps
    rows built over any vocabulary into the fitted one (unknown terms drop),
    which is how a re-analysis places new users without refitting.
    """

    def __init__(self, min_df: int = 2, max_df: float = 0.5, subword_weight: float = 0.5):
        self.min_df, self.max_df, self.subword_weight = min_df, max_df, subword_weight

    def fit_transform(self, counts: sp.csr_matrix, terms: Sequence[str]) -> sp.csr_matrix:
        C, kept = prune(counts, list(terms), self.min_df, self.max_df)
        if C.shape[1] == 0:
            C, kept = counts, list(terms)
        self.terms_ = kept
        self.counts_ = C
        W, self.idf_ = tfidf(C)
        self.sub_matrix_, _ = subword_matrix(kept, max_n=1)
        if self.sub_matrix_.shape[1] > 1:
            S, self.sub_idf_ = tfidf(C @ self.sub_matrix_)
            S.data *= self.subword_weight
            X = sp.hstack([W, S], format="csr")
        else:
            self.sub_idf_ = None
            X = W
        return _l2(X)

    def reindex(self, counts: sp.csr_matrix, terms: Sequence[str]) -> sp.csr_matrix:
        index = {t: i for i, t in enumerate(self.terms_)}
        src = np.array([index.get(t, -1) for t in terms], dtype=np.int64)
        coo = counts.tocoo()
        dst = src[coo.col] if len(src) else np.zeros(0, np.int64)
        keep = dst >= 0
        return sp.csr_matrix((coo.data[keep], (coo.row[keep], dst[keep])), shape=(counts.shape[0], len(self.terms_)))

    def transform_counts(self, C: sp.csr_matrix) -> sp.csr_matrix:
        W, _ = tfidf(C, self.idf_)
        if self.sub_idf_ is not None:
            S, _ = tfidf(C @ self.sub_matrix_, self.sub_idf_)
            S.data *= self.subword_weight
            W = sp.hstack([W, S], format="csr")
        return _l2(W)

    def transform(self, counts: sp.csr_matrix, terms: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(features, counts in the fitted vocabulary)."""
        C = self.reindex(counts, terms)
        return self.transform_counts(C), C


def _l2(X: sp.csr_matrix) -> sp.csr_matrix:
    X = sp.csr_matrix(X, dtype=np.float32)
    _l2_inplace(X)
    return X
