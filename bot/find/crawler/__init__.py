"""The crawler: run configured queries against their sources, incrementally.

A small package, one job per module:
- ``run``: a crawl - the queries by source, each source in its own thread;
- ``source_crawl``: one source's queries through one polite client, each run recorded;
- ``pages``: one query's pass over its feed, a page per transaction, resumable after a kill;
- ``authors``: the author queue (profiles and timelines of the authors found);
- ``attempts``: retries within the read's one budget (``bot.find.retry``), and pausing a blocked source;
- ``summary``: what a crawl did.
"""

from bot.find.crawler.run import run_crawl
from bot.find.crawler.summary import CrawlSummary, QueryRun

__all__ = ["CrawlSummary", "QueryRun", "run_crawl"]
