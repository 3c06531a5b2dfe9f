"""huaxiang's application layer: sources, crawler, scheduler, planner, review, sender, exports, CLI."""

__version__ = "0.1.0"
