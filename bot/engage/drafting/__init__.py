"""Drafting: what a reply or repost comment says, and why.

``reading`` reads a post (its kind, whole key phrases, topics), ``library``
matches the campaign's content library to it, ``builtin`` writes drafts that
answer it, ``llm`` optionally asks a chat-completions model, and ``compose``
puts them together for the planner, every draft carrying its reason.
"""
