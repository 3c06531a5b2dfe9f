"""What every step of one source's crawl works with."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config import Settings
from config.schema import SourceSettings
from bot.find.crawler.attempts import Attempts
from bot.find.sources.base import Source


@dataclass
class SourceContext:
    """One source's crawl: its database connection, settings, adapter and retry policy."""

    db: sqlite3.Connection
    settings: Settings
    src: SourceSettings
    source: Source
    attempts: Attempts
    progress: Callable[..., Any] | None

    def tick(self) -> None:
        if self.progress is not None:
            self.progress(1)
