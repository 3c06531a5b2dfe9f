"""The sentence-vector cache: one vector per distinct cleaned text and encoder.

Why keyed by text and model rather than by post: reposts and copy-paste
make many posts share a text, and embedding is the costliest step of a
semantic analysis; a vector made by one model is never mixed with another's.
The planner reads the same vectors to match posts with the content library.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence

from storage.db import chunked, marks


def cleaned_texts(db: sqlite3.Connection, user_ids: Sequence[int] | None = None) -> Iterator[str]:
    """Each distinct cleaned text of the tokenised posts (of all users, or of these)."""
    if user_ids is None:
        for (clean,) in db.execute("SELECT DISTINCT clean FROM post_tokens"):
            yield clean or ""
        return
    for chunk in chunked(sorted(set(user_ids))):
        for (clean,) in db.execute("SELECT DISTINCT t.clean FROM posts p JOIN post_tokens t ON t.post_id = p.id"
                                   " WHERE p.user_id IN (" + marks(len(chunk)) + ")", chunk):
            yield clean or ""


def vector_keys(db: sqlite3.Connection, model: str) -> set[str]:
    return {r[0] for r in db.execute("SELECT text_key FROM text_vectors WHERE model = ?", (model,))}


def count_vectors(db: sqlite3.Connection, model: str) -> int:
    return db.execute("SELECT COUNT(*) FROM text_vectors WHERE model = ?", (model,)).fetchone()[0]


def store_vectors(db: sqlite3.Connection, model: str, rows: Iterable[tuple[str, bytes]]) -> int:
    """rows: (text key, vector blob); an existing vector is kept (same text, same model, same vector)."""
    cur = db.executemany("INSERT OR IGNORE INTO text_vectors (text_key, model, vector) VALUES (?, ?, ?)",
                         ((k, model, v) for k, v in rows))
    return cur.rowcount


def load_vectors(db: sqlite3.Connection, model: str, keys: Iterable[str] | None = None) -> dict[str, bytes]:
    """Stored vectors of this model: all, or just these keys (an incremental run's few users)."""
    if keys is None:
        return dict(db.execute("SELECT text_key, vector FROM text_vectors WHERE model = ?", (model,)))
    out: dict[str, bytes] = {}
    for chunk in chunked(sorted(set(keys))):
        out.update(db.execute("SELECT text_key, vector FROM text_vectors WHERE model = ? AND text_key IN ("
                              + marks(len(chunk)) + ")", (model, *chunk)))
    return out


def prune_vectors(db: sqlite3.Connection, model: str, keep: set[str]) -> int:
    """Drop this model's vectors of texts no post has any more (edited or deleted posts)."""
    gone = [k for k in vector_keys(db, model) if k not in keep]
    for chunk in chunked(gone):
        db.execute("DELETE FROM text_vectors WHERE model = ? AND text_key IN (" + marks(len(chunk)) + ")",
                   (model, *chunk))
    return len(gone)


def drop_other_vectors(db: sqlite3.Connection, model: str) -> int:
    """Forget the vectors of every other model (the analysis switched encoders)."""
    return db.execute("DELETE FROM text_vectors WHERE model != ?", (model,)).rowcount
