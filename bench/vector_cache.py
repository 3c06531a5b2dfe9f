"""A sentence-vector cache for benchmarks: ``python bench/vector_cache.py [DATA] [--cache FILE]``.

Why: the e5 model embeds about 100 short posts per second on two shared
cores, and every benchmark database starts empty. Embedding each labelled
text once into a file, then serving later runs from it (``CachedEncoder``,
same model name, so the analysis cannot tell), makes the quality benchmarks
take seconds instead of minutes. Texts not in the file are embedded by the
model and added to it.

Run as a script it fills the cache with the cleaned THUCNews dev headlines
and NLPCC 2016 posts (what the analysis embeds).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlp.clean import clean_post  # noqa: E402
from nlp.encode import MAX_CHARS, default_encoder  # noqa: E402

DEFAULT_CACHE = Path("/tmp") / "huaxiang-bench-vectors.npz"


class CachedEncoder:
    """Wraps the real encoder; vectors of texts seen before come from ``path``."""

    def __init__(self, inner, path: Path = DEFAULT_CACHE) -> None:
        self.inner, self.path = inner, Path(path)
        self.name, self.dim = inner.name, inner.dim
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            data = np.load(self.path, allow_pickle=False)
            keys = data["texts"].tolist()
            self.vectors = dict(zip(keys, data["vectors"]))
        self.added = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [t[:MAX_CHARS] for t in texts]
        todo = sorted({k for k in keys if k not in self.vectors})
        for i in range(0, len(todo), 256):
            part = todo[i:i + 256]
            self.vectors.update(zip(part, self.inner.encode(part)))
            self.added += len(part)
        if todo:
            self.save()
        return np.asarray([self.vectors[k] for k in keys], dtype=np.float32).reshape(len(keys), self.dim)

    def save(self) -> None:
        keys = list(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, texts=np.asarray(keys), vectors=np.asarray([self.vectors[k] for k in keys], dtype=np.float32))
        tmp.replace(self.path)


def install(path: Path = DEFAULT_CACHE) -> CachedEncoder | None:
    """Make the analysis use a cached encoder (None when the model is not installed)."""
    import nlp.encode

    inner = default_encoder()
    if inner is None:
        return None
    cached = CachedEncoder(inner, path)
    nlp.encode.default_encoder = lambda: cached
    return cached


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_audiences import load_nlpcc, load_thucnews

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    args = ap.parse_args(argv)
    data = Path(args.data)
    enc = CachedEncoder(default_encoder(), Path(args.cache))
    texts = load_thucnews(data)[0] + load_nlpcc(data)[0]
    clean = [c for c in dict.fromkeys(clean_post(t).text for t in texts) if len(c.strip()) >= 2]
    for i in range(0, len(clean), 1024):
        enc.encode(clean[i:i + 1024])
        print(f"{min(i + 1024, len(clean))}/{len(clean)} texts ({enc.added} embedded now)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
