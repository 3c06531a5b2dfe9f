"""A fitted clustering as bytes, so a later run can place new users without refitting.

Why an ``.npz`` blob: the vocabulary, IDF weights, LSA components, centroids
and 2-D projection are arrays; numpy writes and reads them without pickle (a
database file from elsewhere must never run code when loaded). Components are
kept as float16: half the size, and placing users needs no more precision.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from nlp.features import ProfileVectorizer, subword_matrix

if TYPE_CHECKING:
    from nlp.cluster import AudienceClusterer

SUBWORD_WEIGHT = 0.5          # within-word character features next to the words (see ProfileVectorizer)


def dump(vec: ProfileVectorizer, model: AudienceClusterer, extra: Mapping[str, np.ndarray]) -> bytes:
    """The fitted vectorizer and clustering, plus ``extra`` named arrays."""
    buf = io.BytesIO()
    np.savez(buf, terms=np.frombuffer(json.dumps(vec.terms_, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
             idf=vec.idf_, sub_idf=vec.sub_idf_ if vec.sub_idf_ is not None else np.zeros(0),
             components=model.components_.astype(np.float16), centroids=model.centroids_,
             projection=model.projection_, **extra)
    return buf.getvalue()


def load(blob: bytes) -> tuple[ProfileVectorizer, dict[str, np.ndarray]]:
    """(the vectorizer ready to ``transform``, the other arrays by name)."""
    data = dict(np.load(io.BytesIO(blob)))
    vec = ProfileVectorizer(subword_weight=SUBWORD_WEIGHT)
    vec.terms_ = json.loads(data.pop("terms").tobytes().decode("utf-8"))
    vec.idf_ = data.pop("idf")
    sub = data.pop("sub_idf")
    vec.sub_idf_ = sub if len(sub) else None
    vec.sub_matrix_, _ = subword_matrix(vec.terms_, max_n=1)
    data["components"] = data["components"].astype(np.float32)
    return vec, data
