-- Crawler state (issue 3): resumable passes, author fetches, run locks.

-- A "pass" walks a query's feed from the newest post down to where the last
-- completed pass started (queries.newest_id). It may span several runs (page
-- budgets, interruptions); queries.cursor is where it continues and
-- pass_newest_id the newest id it has seen, promoted to newest_id when the
-- pass completes. Both are written in the same transaction as each page.
ALTER TABLE queries ADD COLUMN pass_newest_id TEXT;
ALTER TABLE queries ADD COLUMN pass_started_at TEXT;
ALTER TABLE queries ADD COLUMN pass_pages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queries ADD COLUMN last_status TEXT;

ALTER TABLE sources ADD COLUMN last_ok_at TEXT;
ALTER TABLE sources ADD COLUMN last_blocked_at TEXT;

ALTER TABLE crawl_runs ADD COLUMN authors INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_runs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_runs ADD COLUMN pid INTEGER;
CREATE INDEX crawl_runs_query ON crawl_runs(query, id);

-- Authors found by a query whose profile and recent posts still need fetching
-- (pending) or have been fetched (done). Marked pending in the same
-- transaction as the page that found them, so a kill never forgets one.
CREATE TABLE crawl_authors (
    platform TEXT NOT NULL,
    uid TEXT NOT NULL,
    source TEXT NOT NULL,
    query TEXT,
    status TEXT NOT NULL DEFAULT 'pending',      -- pending | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    found_at TEXT NOT NULL,
    fetched_at TEXT,
    error TEXT,
    PRIMARY KEY (platform, uid)
);
CREATE INDEX crawl_authors_pending ON crawl_authors(source, status);

-- One live crawl per query: a second process skips it instead of racing.
CREATE TABLE crawl_locks (
    query TEXT PRIMARY KEY,
    run_id INTEGER,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at TEXT NOT NULL
);
