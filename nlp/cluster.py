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
    # k -> k-means labels of every row with full starts (the contenders, when the scan saw all rows)
    labels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)


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


def silhouette_from_distances(D: np.ndarray, labels: np.ndarray, per_cluster: bool = False) -> float:
    """Mean silhouette (as sklearn's ``silhouette_score(metric="precomputed")``)
    with one matrix product: the row sums of D per cluster give every point's
    mean distance to each cluster at once. ``per_cluster``: the mean of each
    cluster's mean silhouette, so a small audience weighs as much as a big
    one (merged into a big one, a 3% audience costs the point mean little).

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
    s = np.nan_to_num(s)
    if per_cluster:
        return float((np.bincount(lab, weights=s, minlength=k) / counts).mean())
    return float(s.mean())


def _scan_threads() -> int:
    """Threads that score candidate k at once in ``choose_k``."""
    return max(1, min(os.cpu_count() or 1, 4))


def _one_thread_here() -> None:
    """One OpenMP thread for k-means in this (pool) thread too: OpenMP's limit
    is per thread, so the caller's ``threadpool_limits`` does not reach new
    threads, and a k-means on more threads would also round differently.
    Run once per pool thread (its initializer): each call inspects every
    loaded library, 4 ms."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


def choose_k(Z: np.ndarray, k_min: int = 2, k_max: int = 30, seed: int = 0, sample: int = 4000,
             minibatch_above: int = 50_000, patience: int = 6, tolerance: float = 0.005,
             n_init: int = 10, per_cluster: bool = False, scan_init: int = 3, recheck: float = 0.85,
             max_recheck: int = 4) -> KChoice:
    """The k with the highest cosine silhouette on (a sample of) Z (or a
    smaller k whose silhouette is within ``tolerance`` (relative) of it).

    A first scan runs ``scan_init`` k-means starts per k; the k whose
    silhouette came within ``recheck`` of the best (at most ``max_recheck``
    of them) are scored again with ``n_init`` starts, and the best of those
    wins. Why: with three starts the run at the true k often lands in a
    poor local optimum (two topics merged, another split) and scores below
    its neighbours; k came out one off in four of five THUCNews seeds. Ten
    starts for every k cost a third more analysis time; ten for the few
    contenders cost little.
    The scan stops once ``patience`` larger k in a row failed to beat the
    best so far: past a real structure silhouette only falls as clusters
    are split, and each k costs a k-means run.
    """
    n = len(Z)
    k_max = max(k_min, min(k_max, n // 5 if n >= 10 else 2))
    rng = np.random.default_rng(seed)
    S = Z if n <= sample else Z[rng.choice(n, sample, replace=False)]
    best, scores = k_min, {}
    kept: dict[int, np.ndarray] = {}
    D = cosine_distances_of(S)

    def score(k: int, starts: int) -> float | None:
        labels = _kmeans(S, k, seed, n_init=starts, minibatch_above=minibatch_above)
        if starts == n_init and S is Z:
            kept[k] = labels
        return silhouette_from_distances(D, labels, per_cluster) if len(set(labels.tolist())) >= 2 else None

    ks = [k for k in range(k_min, k_max + 1) if k < len(S)]
    ahead = _scan_threads()
    with ThreadPoolExecutor(ahead, initializer=_one_thread_here) as pool:
        # Each k's k-means is independent and seeded, so k ahead of the one
        # being judged are scored at once on the other cores (k-means releases
        # the GIL); the scan still stops where the serial one would, and
        # scores beyond the stop are dropped.
        futures = {k: pool.submit(score, k, scan_init) for k in ks[:ahead]}
        for i, k in enumerate(ks):
            if i + ahead < len(ks):
                futures[ks[i + ahead]] = pool.submit(score, ks[i + ahead], scan_init)
            v = futures.pop(k).result()
            if v is None:
                continue
            scores[k] = v
            top = max(scores, key=lambda kk: (round(scores[kk], 4), -kk))
            if k - top >= patience:
                break
        for f in futures.values():
            f.cancel()
        if scores and n_init > scan_init:
            top = max(scores.values())
            contenders = sorted((kk for kk, v in scores.items() if v >= recheck * top), key=lambda kk: -scores[kk])
            rechecked = {kk: pool.submit(score, kk, n_init) for kk in contenders[:max_recheck]}
            for kk, f in rechecked.items():
                v = f.result()
                if v is not None:
                    scores[kk] = v
    if scores:
        top = max(scores.values())
        # Ties go to fewer audiences (a person reads every audience).
        best = min(kk for kk, v in scores.items() if v >= top - tolerance * abs(top))
    return KChoice(best, scores, kept)


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


def distinctiveness(Z: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How much closer each row is to its own centroid than to the average of
    all centroids (the "everything" direction).

    Why: a user who posts about everything sits between all audiences, at
    about the same cosine from each; a person with a real interest sits
    clearly nearer one. Users who post about everything are also alike, so
    k-means happily makes an audience of them, whose centroid is that very
    average: its members score about zero here, however tight they are.
    """
    g = normalize(centroids.mean(axis=0, keepdims=True))[0]
    return np.einsum("ij,ij->i", Z, centroids[labels]) - Z @ g


def unfocused(delta: np.ndarray, max_mean: float = 0.3, min_gain: float = 10.0, seed: int = 0,
              confidence: float = 0.5, max_margin: float | None = None) -> np.ndarray:
    """Which rows belong to a crowd that fits no audience: a mask.

    A two-component Gaussian mixture over the distinctiveness (scaled by its
    typical value) against a single Gaussian, as BERTopic's HDBSCAN finds
    outliers as the points outside every dense region: when the two
    components explain the values clearly better (BIC lower by
    ``min_gain``) and the lower one sits near zero (mean under ``max_mean``
    of typical), its members are the crowd that posts about everything.
    Without such a crowd nobody is left out: a few users of every audience
    always sit near its edge, and they are still its users.

    ``max_margin``: also require the value itself to be under this share of
    the typical one. Why: with words alone the two components overlap
    (the crowd's spread is as wide as its distance to zero), so the
    posterior alone left out 11-15% of real users whose margin was small
    but clearly positive; with sentence vectors the crowd sits below zero
    and the bound changes nothing.
    """
    n = len(delta)
    out = np.zeros(n, dtype=bool)
    if n < 20:
        return out
    from sklearn.mixture import GaussianMixture

    typical = float(np.median(delta[delta >= np.quantile(delta, 0.25)]))
    if typical <= 0:
        return out
    x = (delta / typical).reshape(-1, 1).astype(np.float64)
    one = GaussianMixture(1, random_state=seed).fit(x)
    two = GaussianMixture(2, random_state=seed, n_init=3).fit(x)
    low = int(np.argmin(two.means_.ravel()))
    if one.bic(x) - two.bic(x) < min_gain or two.means_.ravel()[low] > max_mean:
        return out
    out = two.predict_proba(x)[:, low] > confidence
    return out if max_margin is None else out & (x.ravel() < max_margin)


UNFOCUSED_MAX_MARGIN = 0.2    # see unfocused(): a user this much closer to an audience than to everything stays
SPLIT_MIN_SILHOUETTE = 0.12
SPLIT_SHARE_OF_FIT = 0.8
OVERSIZE = 1.8               # an audience this many times the median size may hold two (split_merged)
OVERSIZE_SHARE_OF_FIT = 0.6


def split_merged(Z: np.ndarray, labels: np.ndarray, min_silhouette: float = SPLIT_MIN_SILHOUETTE,
                 min_share: float = 0.025, sample: int = 1500, seed: int = 0, max_k: int = 30,
                 oversize_silhouette: float | None = None) -> np.ndarray:
    """Split audiences that hold two: bisect each with 2-means and keep the
    split when the halves stand clearly apart (silhouette of the split at
    least ``min_silhouette``) and the smaller half is a real audience (at
    least ``min_share`` of all rows). Repeated until nothing splits.

    Why: the silhouette that picks k is a mean over users, so merging a 3%
    audience into its nearest neighbour costs it almost nothing; k came out
    4 for seven audiences of 35/25/15/10/7/5/3%. A one-topic audience cut in
    two gives halves that overlap (split silhouette 0.05-0.08 on THUCNews
    users); three topics in one gave 0.2. The caller also asks for at
    least ``SPLIT_SHARE_OF_FIT`` of the chosen k's silhouette, so on
    cleanly separated data a split by some common side word (boilerplate
    used by a share of every audience) is not taken for an audience.

    ``oversize_silhouette``: a lower bar for an audience at least
    ``OVERSIZE`` times the median audience whose halves are each at least
    half the median: two neighbouring topics (THUCNews finance and stocks)
    merge into one audience of twice the usual size whose split stands
    apart no more clearly than any audience's (0.11 against 0.06-0.12),
    so only its size tells it from one topic.
    """
    labels = labels.copy()
    n = len(Z)
    floor = max(10, int(min_share * n))
    sizes = np.bincount(labels[labels >= 0])
    median = float(np.median(sizes[sizes > 0])) if len(sizes) else 0.0
    rng = np.random.default_rng(seed)
    todo = [c for c in np.unique(labels) if c >= 0]
    while todo and labels.max() + 1 < max_k:
        c = todo.pop()
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2 * floor:
            continue
        pick = idx if len(idx) <= sample else np.sort(rng.choice(idx, sample, replace=False))
        km = KMeans(n_clusters=2, random_state=seed, n_init=10).fit(Z[pick])
        sub = km.labels_
        small = min(np.bincount(sub, minlength=2)) * len(idx) / len(pick)
        bar = min_silhouette
        if oversize_silhouette is not None and len(idx) >= OVERSIZE * median and small >= median / 2:
            bar = min(bar, oversize_silhouette)
        if small < floor or silhouette_from_distances(cosine_distances_of(Z[pick]), sub) < bar:
            continue
        halves = (Z[idx] @ normalize(km.cluster_centers_).T).argmax(axis=1)
        new = int(labels.max()) + 1
        labels[idx[halves == 1]] = new
        todo += [c, new]
    return labels


def _centroids(Z: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    cent = np.zeros((max(k, 1), Z.shape[1]), dtype=np.float32)
    for c in range(k):
        m = labels == c
        if m.any():
            cent[c] = Z[m].mean(axis=0)
    return normalize(cent)


class AudienceClusterer:
    """``fit(X, semantic)`` on L2-normalised TF-IDF rows (and, optionally, one
    L2-normalised sentence vector per row, see ``nlp.encode``); sets
    ``labels_`` (0..k-1, largest first; -1 for a row that fits no audience),
    ``k_``, ``scores_`` (cosine to the nearest centroid, 0..1),
    ``distinct_`` (see ``distinctiveness``), ``cohesion_`` and ``mixed_``
    (per audience: its members barely stand out from everyone else),
    ``embedding_`` (LSA rows, joined with the sentence vectors), ``coords_``
    (n x 2) and ``k_choice_``.

    ``outliers``: the highest mean (share of the typical distinctiveness) a
    crowd of unfocused users may have to be left out (see ``unfocused``);
    0 puts everyone somewhere, as k-means alone does. ``mixed_below``: an
    audience whose members' median distinctiveness is under this share of
    the typical one is flagged as mixed.
    """

    def __init__(self, k: int | str = "auto", k_min: int = 2, k_max: int = 30, dims: int = 100, seed: int = 0,
                 refine: bool = True, minibatch_above: int = 50_000, refine_max: int = 200_000,
                 threads: int | None = 1, semantic_weight: float | None = None, outliers: float = 0.3,
                 mixed_below: float = 0.5, split: bool = True):
        self.semantic_weight = semantic_weight      # None: by the rows' length (nlp.encode.semantic_weight)
        self.k, self.k_min, self.k_max, self.dims, self.seed = k, k_min, k_max, dims, seed
        self.threads = threads          # BLAS/OpenMP threads during fit (None: the libraries' default)
        self.refine, self.minibatch_above, self.refine_max = refine, minibatch_above, refine_max
        self.outliers, self.mixed_below, self.split = outliers, mixed_below, split

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

    def _embed(self, X: sp.spmatrix, semantic: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
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
        self.word_dims_ = svd.n_components if svd is not None else Z.shape[1]
        return Z, semantic

    def _pick_k(self, Z: np.ndarray) -> int:
        if self.k == "auto" or self.k is None:
            self.k_choice_ = choose_k(Z, self.k_min, self.k_max, self.seed, minibatch_above=self.minibatch_above)
            return self.k_choice_.k
        self.k_choice_ = KChoice(int(self.k))
        return int(self.k)

    def _partition(self, X: sp.spmatrix, Z: np.ndarray, semantic: np.ndarray | None, k: int) -> np.ndarray:
        """k-means (then self-training) labels of these rows."""
        n = len(Z)
        k = max(1, min(k, n))
        if k < 2:
            return np.zeros(n, dtype=np.int64)
        labels = self.k_choice_.labels.get(k)     # choose_k ran this very k-means (same rows, seed and starts)
        if labels is None:
            labels = _kmeans(Z, k, self.seed, n_init=10 if n <= self.minibatch_above else 3,
                             minibatch_above=self.minibatch_above)
        if self.split and (self.k == "auto" or self.k is None):
            # A split must stand out about as clearly as the audiences themselves do.
            bar = max(SPLIT_MIN_SILHOUETTE, SPLIT_SHARE_OF_FIT * self.k_choice_.scores.get(k, 0.0))
            labels = split_merged(Z, labels, min_silhouette=bar, seed=self.seed, max_k=self.k_max,
                                  oversize_silhouette=OVERSIZE_SHARE_OF_FIT * self.k_choice_.scores.get(k, 0.0))
            k = int(labels.max()) + 1
        if self.refine and n <= self.refine_max:
            labels = self_train(join_sparse(X, semantic, self.semantic_weight_), Z, labels, k, seed=self.seed)
        return labels

    def _fit(self, X: sp.spmatrix, semantic: np.ndarray | None) -> "AudienceClusterer":
        n = X.shape[0]
        Z, semantic = self._embed(X, semantic)
        if n < 2:
            self.k_choice_ = KChoice(1)
            labels = np.zeros(n, dtype=np.int64)
        else:
            labels = self._partition(X, Z, semantic, self._pick_k(Z))
            if self.outliers > 0 and labels.max() > 0:
                labels = self._drop_outliers(X, Z, semantic, labels)
        self._finish(Z, labels)
        return self

    def _drop_outliers(self, X: sp.spmatrix, Z: np.ndarray, semantic: np.ndarray | None,
                       labels: np.ndarray) -> np.ndarray:
        """Leave out users who fit no audience, cluster the rest again (with k
        chosen again: an audience made of such users is gone, and with them
        out of the way small real audiences stand apart), then place everyone
        by the nearest centroid and leave out again whoever fits none."""
        k = int(labels.max()) + 1
        cent = _centroids(Z, labels, k)
        delta = distinctiveness(Z, cent, labels)
        core = np.flatnonzero(~unfocused(delta, self.outliers, seed=self.seed))
        if len(core) < max(10, 2 * self.k_min) or len(core) == len(Z):
            return labels
        sub_sem = semantic[core] if semantic is not None else None
        core_labels = self._partition(X[core], Z[core], sub_sem, self._pick_k(Z[core]))
        k = int(core_labels.max()) + 1
        cent = _centroids(Z[core], core_labels, k)
        labels = (Z @ cent.T).argmax(axis=1)
        labels[core] = core_labels
        delta = distinctiveness(Z, cent, labels)
        labels = labels.copy()
        labels[unfocused(delta, self.outliers, seed=self.seed, confidence=0.85, max_margin=UNFOCUSED_MAX_MARGIN)] = -1
        return labels

    def _finish(self, Z: np.ndarray, labels: np.ndarray) -> None:
        n = len(Z)
        assigned = labels >= 0
        if not n:
            k = 0
        elif not assigned.any():            # nobody fits anywhere: one audience rather than none
            labels, k = np.zeros(n, dtype=np.int64), 1
        else:
            labels = labels.copy()
            labels[assigned], k = _compact(labels[assigned].astype(np.int64))
        self.centroids_ = _centroids(Z, labels, k)
        near = (Z @ self.centroids_.T).argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
        own = np.where(labels >= 0, labels, near)
        self.scores_ = np.clip(np.einsum("ij,ij->i", Z, self.centroids_[own]), 0.0, 1.0) if n else np.zeros(0)
        self.distinct_ = distinctiveness(Z, self.centroids_, own) if n and k > 1 else np.zeros(n)
        d = self.distinct_[labels >= 0]
        typical = float(np.median(d[d >= np.quantile(d, 0.25)])) if n and k > 1 and len(d) else 0.0
        self.cohesion_ = np.array([float(np.median(self.distinct_[labels == c])) / typical if typical > 0 else 1.0
                                   for c in range(k)])
        self.mixed_ = self.cohesion_ < self.mixed_below
        self.labels_, self.k_ = labels.astype(np.int64), k
        self.coords_, self.projection_ = map_2d(Z, self.seed)

    def fit_predict(self, X: sp.spmatrix, semantic: np.ndarray | None = None) -> np.ndarray:
        return self.fit(X, semantic).labels_

