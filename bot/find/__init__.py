"""The find stage: getting posts and people in (sources, crawler, imports, sign-in)."""
