"""Clustering user profiles into audiences.

The pipeline, in scikit-learn estimator style (``AudienceClusterer.fit``):

1. LSA: truncated SVD of the TF-IDF rows, rows re-normalised, so cosine
   geometry survives and k-means works in a dense, small space.
2. k: with ``k="auto"`` k-means runs for each k in a range (on a sample
   when there are many users) and the k with the best mean cosine
   silhouette wins: the partition whose groups are tightest relative to
   their nearest neighbour group.
3. k-means (MiniBatchKMeans beyond ``minibatch_above`` users).
4. Refinement by self-training: a linear classifier learns the clusters
   from each cluster's most central members on the full sparse TF-IDF
   features and re-assigns the doubtful rest; repeated until stable. LSA
   blurs rare but telling words; the classifier sees them again.

With sentence vectors (``nlp.encode``), steps 2-4 run on the LSA rows and
the vectors joined side by side, and the classifier reads both.

Nothing here looks at labels: the only inputs are the rows.
"""

from __future__ import annotations

import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from nlp.encode import fill_missing, join_dense, join_sparse, semantic_weight

log = logging.getLogger(__name__)


@dataclass
class KChoice:
    k: int
    scores: dict[int, float] = field(default_factory=dict)   # k -> silhouette


PARALLEL_SVD_MIN_NNZ = 500_000   # below this, threads cost more than they save
# Above this the threaded path's row-block and transposed copies of X would cost
# hundreds of MB: at 1M posts they pushed the analysis past 2 GB, so the largest
# inputs use scikit-learn's single-threaded product on X itself (same result).
PARALLEL_SVD_MAX_NNZ = 10_000_000


def lsa(X: sp.spmatrix, dims: int = 100, seed: int = 0) -> tuple[np.ndarray, TruncatedSVD | None]:
    """Rows of X in a ``dims``-dimensional latent space, L2-normalised."""
    n, m = X.shape
    d = max(1, min(dims, n - 1, m - 1))
    if d < 2:
        return normalize(np.asarray(X.todense() if sp.issparse(X) else X, dtype=np.float32)), None
    svd = TruncatedSVD(n_components=d, algorithm="randomized", n_iter=5, random_state=seed)
    workers = min(os.cpu_count() or 1, 4)
    if sp.issparse(X) and PARALLEL_SVD_MIN_NNZ <= X.nnz <= PARALLEL_SVD_MAX_NNZ and workers > 1:
        Z = _threaded_truncated_svd(svd, sp.csr_matrix(X), workers).astype(np.float32)
    else:
        Z = svd.fit_transform(X).astype(np.float32)
    return normalize(Z), svd


class _RowBlocks:
    """A CSR matrix and its transpose cut into row blocks whose products with a
    dense matrix run in threads (SciPy's sparse kernels release the GIL).

    Each output row is computed exactly as the one-piece product computes it,
    so results are bit-identical; only the wall time shrinks with the cores.
    """

    def __init__(self, X: sp.csr_matrix, pool: ThreadPoolExecutor, parts: int) -> None:
        self.pool = pool
        self.blocks = self._cut(X, parts)
        self.t_blocks = self._cut(X.T.tocsr(), parts)   # CSR of X.T: faster than SciPy's CSC product

    @staticmethod
    def _cut(M: sp.csr_matrix, parts: int) -> list[sp.csr_matrix]:
        step = -(-M.shape[0] // parts)
        return [M[i:i + step] for i in range(0, M.shape[0], step)]

    def _mul(self, blocks: list[sp.csr_matrix], Q: np.ndarray) -> np.ndarray:
        return np.vstack(list(self.pool.map(lambda b: b @ Q, blocks)))

    def dot(self, Q: np.ndarray) -> np.ndarray:      # X @ Q
        return self._mul(self.blocks, Q)

    def t_dot(self, Q: np.ndarray) -> np.ndarray:    # X.T @ Q
        return self._mul(self.t_blocks, Q)


def _threaded_truncated_svd(svd: TruncatedSVD, X: sp.csr_matrix, workers: int) -> np.ndarray:
    """``svd.fit_transform(X)`` for ``algorithm="randomized"``, step for step as
    scikit-learn 1.x does it (same random draws, LU power iterations, QR,
    LAPACK gesdd, sign flip, X @ V), with the sparse products spread over
    threads. ``tests/test_nlp.py`` checks the result equals scikit-learn's.

    Why: the LSA of 10k+ users is a dozen sparse x dense products, each on
    one core in scikit-learn: the largest single cost of clustering.
    """
    from scipy import linalg
    from sklearn.utils.extmath import svd_flip

    rs = np.random.RandomState(svd.random_state)
    k = svd.n_components
    size = k + svd.n_oversamples
    n, m = X.shape
    transpose = n < m
    with ThreadPoolExecutor(workers) as pool:
        R = _RowBlocks(X, pool, workers)
        # M is X.T when there are fewer rows than columns, as in scikit-learn.
        a_dot, at_dot = (R.t_dot, R.dot) if transpose else (R.dot, R.t_dot)
        Q = rs.normal(size=(n if transpose else m, size))
        if X.dtype == np.float32:
            Q = Q.astype(np.float32, copy=False)
        lu = svd.n_iter > 2 and svd.power_iteration_normalizer in ("auto", "LU")
        for _ in range(svd.n_iter):
            Q = a_dot(Q)
            if lu:
                Q, _ = linalg.lu(Q, permute_l=True, check_finite=False)
            Q = at_dot(Q)
            if lu:
                Q, _ = linalg.lu(Q, permute_l=True, check_finite=False)
        Q, _ = linalg.qr(a_dot(Q), mode="economic", check_finite=False)
        B = at_dot(Q).T                                   # Q.T @ M
        Uhat, s, Vt = linalg.svd(B, full_matrices=False, lapack_driver="gesdd")
        del B
        U = Q @ Uhat
        if transpose:
            U, Vt = Vt[:k, :].T, U[:, :k].T
        else:
            U, Vt = U[:, :k], Vt[:k, :]
        U, Vt = svd_flip(U, Vt, u_based_decision=False)
        svd.components_ = Vt
        # scikit-learn's randomized TruncatedSVD returns X @ V (not U * s).
        return R.dot(np.ascontiguousarray(Vt.T))


def _kmeans(Z: np.ndarray, k: int, seed: int, n_init: int, minibatch_above: int) -> np.ndarray:
    if len(Z) > minibatch_above:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=n_init, batch_size=4096)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=n_init)
    return model.fit_predict(Z)


def cosine_distances_of(S: np.ndarray) -> np.ndarray:
    """All pairwise cosine distances of the rows of S (float64, zero diagonal),
    computed once and shared by every candidate k."""
    S64 = normalize(np.asarray(S, dtype=np.float64))
    D = S64 @ S64.T
    np.subtract(1.0, D, out=D)
    np.clip(D, 0.0, 2.0, out=D)
    np.fill_diagonal(D, 0.0)
    return D


def silhouette_from_distances(D: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (as sklearn's ``silhouette_score(metric="precomputed")``)
    with one matrix product: the row sums of D per cluster give every point's
    mean distance to each cluster at once.

    Why not sklearn's: it recomputes the distances for every k and reduces
    them chunk by chunk in Python; choosing k calls this a dozen times.
    """
    uniq, lab = np.unique(labels, return_inverse=True)
    k = len(uniq)
    n = len(lab)
    onehot = np.zeros((n, k), dtype=np.float64)
    onehot[np.arange(n), lab] = 1.0
    sums = D @ onehot                                   # n x k: distance sums to each cluster
    counts = onehot.sum(axis=0)
    own = counts[lab]
    a = sums[np.arange(n), lab] / np.maximum(own - 1, 1)
    other = sums / counts
    other[np.arange(n), lab] = np.inf
    b = other.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    s[own <= 1] = 0.0                                    # sklearn: a lone point scores 0
    return float(np.nan_to_num(s).mean())


def choose_k(Z: np.ndarray, k_min: int = 2, k_max: int = 30, seed: int = 0, sample: int = 4000,
             minibatch_above: int = 50_000, patience: int = 6, tolerance: float = 0.02) -> KChoice:
    """The k with the highest cosine silhouette on (a sample of) Z (or a
    smaller k whose silhouette is within ``tolerance`` (relative) of it).

    The scan stops once ``patience`` larger k in a row failed to beat the
    best so far: past a real structure silhouette only falls as clusters
    are split, and each k costs a k-means run.
    """
    n = len(Z)
    k_max = max(k_min, min(k_max, n // 5 if n >= 10 else 2))
    rng = np.random.default_rng(seed)
    S = Z if n <= sample else Z[rng.choice(n, sample, replace=False)]
    best, scores = k_min, {}
    D = cosine_distances_of(S)
    for k in range(k_min, k_max + 1):
        if k >= len(S):
            break
        labels = _kmeans(S, k, seed, n_init=3, minibatch_above=minibatch_above)
        if len(set(labels.tolist())) < 2:
            continue
        scores[k] = silhouette_from_distances(D, labels)
        top = max(scores, key=lambda kk: (round(scores[kk], 4), -kk))
        if k - top >= patience:
            break
    if scores:
        top = max(scores.values())
        # Prefer fewer audiences unless more are clearly better (a person reads
        # every audience): the smallest k within ``tolerance`` of the best.
        best = min(kk for kk, v in scores.items() if v >= top - tolerance * abs(top))
    return KChoice(best, scores)


def self_train(X: sp.spmatrix, Z: np.ndarray, labels: np.ndarray, k: int, rounds: int = 6, keep: float = 0.8,
               seed: int = 0, C: float = 10.0, max_train: int = 30_000) -> np.ndarray:
    """Refine labels: learn each cluster from its central ``keep`` share on the
    sparse features X and re-assign the rest, until fewer than 0.2% move.

    The classifier warm-starts from the previous round, and trains on at most
    ``max_train`` rows, so large inputs cost a bounded amount of time.
    """
    labels = labels.copy()
    rng = np.random.default_rng(seed)
    clf = None
    for _ in range(rounds):
        present = np.unique(labels)
        if len(present) < 2:
            break
        cent = np.zeros((k, Z.shape[1]), dtype=np.float32)
        for c in present:
            cent[c] = Z[labels == c].mean(axis=0)
        cent = normalize(cent)
        sim = np.einsum("ij,ij->i", Z, cent[labels])
        train = np.zeros(len(labels), dtype=bool)
        for c in present:
            idx = np.flatnonzero(labels == c)
            thr = np.quantile(sim[idx], 1 - keep)
            train[idx[sim[idx] >= thr]] = True
        rest = ~train
        if not rest.any():
            break
        fit_idx = np.flatnonzero(train)
        if len(fit_idx) > max_train:
            fit_idx = np.sort(rng.choice(fit_idx, max_train, replace=False))
        if clf is None or not np.array_equal(clf.classes_, np.unique(labels[fit_idx])):
            clf = LogisticRegression(C=C, max_iter=100, tol=1e-3, random_state=seed, warm_start=True,
                                     class_weight="balanced")
        with warnings.catch_warnings():
            # A capped iteration count is the point (bounded time); the fit is still usable.
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X[fit_idx], labels[fit_idx])
        new = labels.copy()
        rest_idx = np.flatnonzero(rest)
        for i in range(0, len(rest_idx), 20_000):
            part = rest_idx[i:i + 20_000]
            new[part] = clf.predict(X[part])
        moved = float((new != labels).mean())
        labels = new
        if moved < 0.002:
            break
    return labels


def _compact(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber labels 0..k-1 by decreasing size (empty clusters vanish)."""
    uniq, counts = np.unique(labels, return_counts=True)
    order = uniq[np.argsort(-counts, kind="stable")]
    remap = np.full(labels.max() + 1, -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    return remap[labels], len(order)


def map_2d(Z: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two coordinates per row (first two principal axes of Z) for an audience
    map, and the 3 x d projection (mean row, then two axes) that makes them."""
    d = Z.shape[1] if Z.ndim == 2 else 0
    proj = np.zeros((3, max(d, 1)), dtype=np.float32)
    if len(Z) < 3 or d < 2:
        for j in range(min(2, d)):
            proj[1 + j, j] = 1.0
        return project_2d(Z, proj) if len(Z) else np.zeros((0, 2), dtype=np.float32), proj
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(Z)
    proj[0] = pca.mean_
    proj[1:] = pca.components_
    return project_2d(Z, proj), proj


def project_2d(Z: np.ndarray, proj: np.ndarray) -> np.ndarray:
    if len(Z) == 0:
        return np.zeros((0, 2), dtype=np.float32)
    return ((Z - proj[0]) @ proj[1:].T).astype(np.float32)


def assign(X: sp.spmatrix, components: np.ndarray, centroids: np.ndarray, semantic: np.ndarray | None = None,
           weight: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place new rows into an existing clustering: project with the stored LSA
    components (joined with the rows' sentence vectors when the clustering
    used them), pick the nearest centroid. Returns (labels, scores, Z)."""
    L = normalize(np.asarray(X @ components.T, dtype=np.float32))
    if semantic is not None:
        # A row without a vector takes the vector part of the centroid nearest by its words.
        missing = np.flatnonzero(~np.any(semantic, axis=1))
        if len(missing):
            d = L.shape[1]
            near = (L[missing] @ normalize(centroids[:, :d]).T).argmax(axis=1)
            semantic = semantic.copy()
            semantic[missing] = normalize(centroids[near, d:])
    Z = join_dense(L, semantic, weight)
    sims = Z @ centroids.T
    labels = sims.argmax(axis=1)
    return labels, np.clip(sims[np.arange(len(labels)), labels], 0.0, 1.0), Z


class AudienceClusterer:
    """``fit(X, semantic)`` on L2-normalised TF-IDF rows (and, optionally, one
    L2-normalised sentence vector per row, see ``nlp.encode``); sets
    ``labels_`` (0..k-1, largest first), ``k_``, ``scores_`` (cosine to own
    centroid, 0..1), ``embedding_`` (LSA rows, joined with the sentence
    vectors), ``coords_`` (n x 2) and ``k_choice_``."""

    def __init__(self, k: int | str = "auto", k_min: int = 2, k_max: int = 30, dims: int = 100, seed: int = 0,
                 refine: bool = True, minibatch_above: int = 50_000, refine_max: int = 200_000,
                 threads: int | None = 1, semantic_weight: float | None = None):
        self.semantic_weight = semantic_weight      # None: by the rows' length (nlp.encode.semantic_weight)
        self.k, self.k_min, self.k_max, self.dims, self.seed = k, k_min, k_max, dims, seed
        self.threads = threads          # BLAS/OpenMP threads during fit (None: the libraries' default)
        self.refine, self.minibatch_above, self.refine_max = refine, minibatch_above, refine_max

    def fit(self, X: sp.spmatrix, semantic: np.ndarray | None = None) -> "AudienceClusterer":
        # One BLAS/OpenMP thread: their pools spin-wait, and when the cores
        # are shared with other work (a crawler, a web server, another
        # analysis) a 2-thread fit ran 3-7x slower than a 1-thread one
        # (100k-post corpus: 12-28s vs 3-4s); on an idle 2-core machine one
        # thread costs little. It also makes the result independent of the
        # machine's core count (threaded reductions round differently).
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.threads):
            return self._fit(X, semantic)

    def _fit(self, X: sp.spmatrix, semantic: np.ndarray | None) -> "AudienceClusterer":
        n = X.shape[0]
        Z, svd = lsa(X, self.dims, self.seed)
        self.semantic_weight_ = 0.0
        if semantic is not None:
            if len(semantic) != n:
                raise ValueError(f"{len(semantic)} sentence vectors for {n} rows")
            w = self.semantic_weight
            self.semantic_weight_ = w = semantic_weight(X.getnnz() / max(n, 1)) if w is None else float(w)
            semantic = fill_missing(semantic, Z, seed=self.seed)
            Z = join_dense(Z, semantic, w)
        self.embedding_ = Z
        # None for inputs too small to factorise (then there is nothing to reuse).
        self.components_ = svd.components_.astype(np.float32) if svd is not None else None
        if n < 2:
            self.k_choice_ = KChoice(1)
            labels = np.zeros(n, dtype=np.int64)
        else:
            if self.k == "auto" or self.k is None:
                self.k_choice_ = choose_k(Z, self.k_min, self.k_max, self.seed, minibatch_above=self.minibatch_above)
                k = self.k_choice_.k
            else:
                k = int(self.k)
                self.k_choice_ = KChoice(k)
            k = max(1, min(k, n))
            labels = _kmeans(Z, k, self.seed, n_init=10 if n <= self.minibatch_above else 3,
                             minibatch_above=self.minibatch_above) if k > 1 else np.zeros(n, dtype=np.int64)
            if self.refine and k > 1 and n <= self.refine_max:
                labels = self_train(join_sparse(X, semantic, self.semantic_weight_), Z, labels, k, seed=self.seed)
        labels, k = _compact(labels.astype(np.int64)) if n else (labels, 0)
        cent = np.zeros((max(k, 1), Z.shape[1]), dtype=np.float32)
        for c in range(k):
            cent[c] = Z[labels == c].mean(axis=0)
        self.centroids_ = normalize(cent)
        self.scores_ = np.clip(np.einsum("ij,ij->i", Z, self.centroids_[labels]), 0.0, 1.0) if n else np.zeros(0)
        self.labels_, self.k_ = labels, k
        self.coords_, self.projection_ = map_2d(Z, self.seed)
        return self

    def fit_predict(self, X: sp.spmatrix, semantic: np.ndarray | None = None) -> np.ndarray:
        return self.fit(X, semantic).labels_
