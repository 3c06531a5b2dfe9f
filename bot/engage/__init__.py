"""The engage stage: planning, drafting, policy, queue, review, sending, outcomes.

New engage-stage modules live here; the older flat ``bot/engage/planner.py`` and
friends move in later (see GUIDE.md)."""
