-- More platforms (issue 7): the #nobot opt-out and feed validators.

-- A user who writes #nobot in their bio (the Mastodon convention, honoured on
-- every platform) must never get a planned action. Derived from the bio the
-- adapters store, so no writer has to remember to set it; the planner and the
-- sender check `users.nobot = 1`. LIKE is case-insensitive for ASCII, so
-- #NoBot counts too.
ALTER TABLE users ADD COLUMN nobot INTEGER GENERATED ALWAYS AS (
    CASE WHEN coalesce(bio, '') LIKE '%#nobot%' THEN 1 ELSE 0 END
) VIRTUAL;

-- Conditional GET validators per feed, so polling an unchanged RSS/Atom feed
-- costs one 304 and no parsing.
CREATE TABLE feed_state (
    source TEXT NOT NULL,                        -- the [[sources]] name
    url TEXT NOT NULL,                           -- the feed URL as requested (without access key)
    etag TEXT,
    last_modified TEXT,
    checked_at TEXT,
    changed_at TEXT,                             -- last time the feed answered with new content
    PRIMARY KEY (source, url)
);
