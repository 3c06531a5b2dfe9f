"""Fault injection for the sandbox: the ways a real platform misbehaves.

Why hash-based and per-URL: a fault is decided by (seed, request path and
query, how many times that exact request has been made), so a run is
reproducible whatever the thread timing, and a retry of the same page gets
a fresh roll - exactly like a flaky real server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields

from bot.find.sandbox.world import stable_hash

# Fault kinds, in the order they are rolled.
KINDS = ("http_418", "http_432", "http_429", "http_500", "http_503", "slow", "truncated", "captcha",
         "login_redirect", "bad_payload")


@dataclass
class FaultConfig:
    """Per-request probabilities of each fault (0..1); their sum is the total fault rate."""

    http_418: float = 0.0
    http_432: float = 0.0
    http_429: float = 0.0
    http_500: float = 0.0
    http_503: float = 0.0
    slow: float = 0.0
    truncated: float = 0.0
    captcha: float = 0.0
    login_redirect: float = 0.0
    bad_payload: float = 0.0
    slow_s: float = 3.0               # how long a slow response takes (beyond a client timeout = a timeout)
    retry_after_s: float = 1.0        # the Retry-After sent with 429
    seed: int = 0
    writes: bool = False              # also inject into write endpoints (for sender tests)

    @classmethod
    def spread(cls, total: float, **overrides: float) -> "FaultConfig":
        """``total`` spread evenly over every fault kind."""
        share = total / len(KINDS)
        cfg = cls(**{k: share for k in KINDS})
        for k, v in overrides.items():
            setattr(cfg, k, v)
        return cfg

    @property
    def total(self) -> float:
        return sum(getattr(self, k) for k in KINDS)

    def active(self) -> bool:
        return self.total > 0


class FaultPlan:
    """Decides, per request, which fault (if any) to inject; counts what it did."""

    def __init__(self, config: FaultConfig | None):
        self.config = config or FaultConfig()
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {k: 0 for k in KINDS}

    def roll(self, key: str) -> str | None:
        cfg = self.config
        if not cfg.active():
            return None
        with self._lock:
            n = self._attempts.get(key, 0)
            self._attempts[key] = n + 1
        u = (stable_hash(cfg.seed, key, n) % 1_000_000) / 1_000_000
        acc = 0.0
        for kind in KINDS:
            acc += getattr(cfg, kind)
            if u < acc:
                with self._lock:
                    self.injected[kind] += 1
                return kind
        return None


def fault_fields() -> list[str]:
    return [f.name for f in fields(FaultConfig)]
