-- The core schema: where data comes from, who said what, and what we did.
-- Later migrations (0010_*, 0020_*, ...) extend it; this file never changes
-- once released.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Platform sources as configured, plus their live health (paused when blocked).
CREATE TABLE sources (
    name TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    base_url TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'ok',          -- ok | paused
    paused_until TEXT,
    pause_reason TEXT,
    consecutive_blocks INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT
);

-- Configured queries and their incremental crawl state.
CREATE TABLE queries (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,                          -- tag | topic | group | keyword
    value TEXT NOT NULL,
    cursor TEXT,                                 -- opaque resume cursor of an unfinished run
    newest_id TEXT,                              -- newest post id seen (stop point for the next run)
    newest_at TEXT,
    last_run_id INTEGER,
    updated_at TEXT
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    uid TEXT NOT NULL,                           -- the platform's user id
    name TEXT,
    bio TEXT,
    tags TEXT NOT NULL DEFAULT '[]',             -- JSON list of self-chosen tags
    followers INTEGER,
    following INTEGER,
    posts_count INTEGER,
    verified INTEGER,
    verified_reason TEXT,
    gender TEXT,
    location TEXT,
    profile_url TEXT,
    avatar_url TEXT,
    raw TEXT,                                    -- raw profile payload (JSON)
    content_hash TEXT,
    profile_fetched_at TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT,                              -- newest activity we know of
    UNIQUE (platform, uid)
);

CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    pid TEXT NOT NULL,                           -- the platform's post id
    uid TEXT NOT NULL,                           -- author's platform user id
    user_id INTEGER REFERENCES users(id),
    kind TEXT NOT NULL DEFAULT 'post',           -- post | comment
    text TEXT NOT NULL DEFAULT '',               -- plain text (HTML removed)
    created_at TEXT,                             -- ISO 8601 with offset
    topics TEXT NOT NULL DEFAULT '[]',           -- JSON list
    mentions TEXT NOT NULL DEFAULT '[]',         -- JSON list
    reposts INTEGER,
    comments INTEGER,
    likes INTEGER,
    parent_pid TEXT,                             -- for comments: the post commented on
    repost_of TEXT,                              -- the original's pid when this is a repost
    group_id TEXT,                               -- super-topic / group it was posted in
    region TEXT,
    url TEXT,
    raw TEXT,                                    -- raw payload (JSON), kept beside the parsed row
    content_hash TEXT,
    first_seen TEXT NOT NULL,
    updated_at TEXT,
    UNIQUE (platform, pid)
);
CREATE INDEX posts_user ON posts(user_id);
CREATE INDEX posts_created ON posts(created_at);
CREATE INDEX posts_parent ON posts(parent_pid);

-- Which query found which post (a post may be found by several).
CREATE TABLE post_queries (
    post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    query TEXT NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (post_id, query)
) WITHOUT ROWID;

-- Full-text search over post text. The trigram tokenizer matches any
-- substring of 3+ characters, which suits unsegmented Chinese.
CREATE VIRTUAL TABLE posts_fts USING fts5(text, content='posts', content_rowid='id', tokenize='trigram');
CREATE TRIGGER posts_fts_ai AFTER INSERT ON posts BEGIN
    INSERT INTO posts_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER posts_fts_ad AFTER DELETE ON posts BEGIN
    INSERT INTO posts_fts(posts_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER posts_fts_au AFTER UPDATE OF text ON posts BEGIN
    INSERT INTO posts_fts(posts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO posts_fts(rowid, text) VALUES (new.id, new.text);
END;

CREATE TABLE crawl_runs (
    id INTEGER PRIMARY KEY,
    query TEXT,
    source TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',      -- running | ok | partial | blocked | failed | interrupted
    requests INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    new_posts INTEGER NOT NULL DEFAULT 0,
    updated_posts INTEGER NOT NULL DEFAULT 0,
    new_users INTEGER NOT NULL DEFAULT 0,
    updated_users INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    faults TEXT NOT NULL DEFAULT '{}',           -- JSON: fault kind -> count
    error TEXT
);

CREATE TABLE import_runs (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL,
    format TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    imported INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'running'
);

CREATE TABLE analysis_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    k INTEGER,
    params TEXT NOT NULL DEFAULT '{}',
    n_users INTEGER,
    n_posts INTEGER,
    metrics TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE audiences (
    id INTEGER PRIMARY KEY,
    auto_name TEXT NOT NULL DEFAULT '',
    name TEXT,                                   -- set by a person; survives re-runs
    status TEXT NOT NULL DEFAULT 'active',       -- active | retired
    size INTEGER NOT NULL DEFAULT 0,
    share REAL NOT NULL DEFAULT 0,
    keywords TEXT NOT NULL DEFAULT '[]',
    topics TEXT NOT NULL DEFAULT '[]',
    mentions TEXT NOT NULL DEFAULT '[]',
    influencers TEXT NOT NULL DEFAULT '[]',
    sample_posts TEXT NOT NULL DEFAULT '[]',
    active_hours TEXT NOT NULL DEFAULT '[]',
    tier_counts TEXT NOT NULL DEFAULT '{}',
    created_run INTEGER,
    updated_run INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT
);

CREATE TABLE memberships (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    audience_id INTEGER NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
    score REAL NOT NULL,
    tier TEXT,                                   -- leader | engaged | potential
    run_id INTEGER,
    PRIMARY KEY (user_id, audience_id)
);
CREATE INDEX memberships_audience ON memberships(audience_id);

-- The engagement queue: proposed actions awaiting a person.
CREATE TABLE queue (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                          -- reply | repost | group_reply | follow (suggestion only)
    status TEXT NOT NULL DEFAULT 'pending',
    source TEXT,
    platform TEXT,
    post_id INTEGER REFERENCES posts(id),
    target_user_id INTEGER REFERENCES users(id),
    audience_id INTEGER,
    template TEXT,
    variant INTEGER,
    text TEXT,
    score REAL,
    reason TEXT,
    scheduled_at TEXT,
    expires_at TEXT,
    dedupe_key TEXT UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE INDEX queue_status ON queue(status);

-- Append-only: every change to the queue, with who, when and the text before/after.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    item_id INTEGER,
    from_status TEXT,
    to_status TEXT,
    text_before TEXT,
    text_after TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
