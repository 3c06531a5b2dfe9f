"""Reading the JSON lists the analysis stores on an audience.

Why lenient: keywords, topics and influencers are written by the analysis
and their shape has grown over time (plain strings, [word, weight] pairs,
objects). Exports and the report only need "a label and a weight", so they
read any of these shapes instead of breaking when one changes.
"""

from __future__ import annotations

from typing import Any

_LABEL_KEYS = ("word", "keyword", "term", "topic", "name", "label", "text", "mention", "uid", "user", "id")
_WEIGHT_KEYS = ("weight", "score", "count", "users", "n", "lift", "tfidf", "influence", "followers", "value")


def weighted(items: Any) -> list[tuple[str, float]]:
    """``[(label, weight)]`` from a list of strings, pairs or objects, or a {label: weight} object.

    Plain strings get descending weights so their order still shows in a chart.
    """
    if isinstance(items, dict):
        out = []
        for k, v in items.items():
            try:
                out.append((str(k), float(v)))
            except (TypeError, ValueError):
                continue
        return out
    if not isinstance(items, list):
        return []
    out: list[tuple[str, float]] = []
    n = len(items)
    for i, item in enumerate(items):
        label: Any = None
        weight: Any = None
        if isinstance(item, str):
            label = item
        elif isinstance(item, (list, tuple)) and item:
            label = item[0]
            weight = item[1] if len(item) > 1 else None
        elif isinstance(item, dict):
            label = next((item[k] for k in _LABEL_KEYS if item.get(k) not in (None, "")), None)
            weight = next((item[k] for k in _WEIGHT_KEYS if isinstance(item.get(k), (int, float))), None)
        if label is None or label == "":
            continue
        try:
            w = float(weight) if weight is not None else float(n - i)
        except (TypeError, ValueError):
            w = float(n - i)
        out.append((str(label), w))
    return out


def labels(items: Any) -> list[str]:
    return [label for label, _ in weighted(items)]


def records(items: Any) -> list[dict[str, Any]]:
    """Objects as they are (influencers carry several fields); strings become {"name": s}."""
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, (list, tuple)) and item:
            out.append({"name": item[0], **({"score": item[1]} if len(item) > 1 else {})})
        elif item not in (None, ""):
            out.append({"name": item})
    return out
