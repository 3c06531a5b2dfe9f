-- Audience analysis: token cache, per-user stats and relevance, audience history.

-- jieba tokens computed once per post; re-analysis only tokenises posts whose
-- text changed (text_hash) or that contain a word the user dictionary gained
-- or lost since (see storage.audiences.invalidate_tokens_containing).
CREATE TABLE post_tokens (
    post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
    content_hash TEXT,                           -- posts.content_hash when tokenised (cheap unchanged check)
    text_hash TEXT NOT NULL,                     -- hash of posts.text when tokenised
    tokens TEXT NOT NULL DEFAULT '',             -- space-separated jieba words (stopwords removed)
    clean TEXT NOT NULL DEFAULT '',              -- cleaned, normalised text (what was tokenised)
    topics TEXT NOT NULL DEFAULT '',             -- topics found in the text, tab-separated
    mentions TEXT NOT NULL DEFAULT '',           -- mentions, tab-separated
    emoticons TEXT NOT NULL DEFAULT '',          -- emoticons, tab-separated
    tokenized_at TEXT NOT NULL
);

-- One row per clustered user, rewritten by every analysis run.
CREATE TABLE user_stats (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    run_id INTEGER,
    audience_id INTEGER,                         -- same as memberships.audience_id
    n_posts INTEGER NOT NULL DEFAULT 0,          -- posts of this user in the analysed data
    influence REAL NOT NULL DEFAULT 0,           -- 0..1 percentile of followers + engagement
    activity REAL NOT NULL DEFAULT 0,            -- 0..1 percentile of posting volume
    recency REAL NOT NULL DEFAULT 0,             -- 0..1, 1 = posted just now, halves every 30 days
    relevance REAL NOT NULL DEFAULT 0,           -- best relevance to any seeded target audience (0..1)
    tier_score REAL NOT NULL DEFAULT 0,          -- what the tier was ranked by
    active_hours TEXT NOT NULL DEFAULT '[]',     -- JSON: 24 post counts by local hour (engagement.timezone)
    peak_hours TEXT NOT NULL DEFAULT '[]',       -- JSON: up to 3 busiest local hours, busiest first
    keywords TEXT NOT NULL DEFAULT '[]',         -- JSON: the user's own top words
    x REAL,                                      -- 2-D map coordinates from the analysis vectors
    y REAL,
    updated_at TEXT
);
CREATE INDEX user_stats_audience ON user_stats(audience_id);

-- Relevance of every analysed user to each seeded target audience ([[audiences]] in config).
CREATE TABLE user_relevance (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    target TEXT NOT NULL,                        -- [[audiences]].name
    score REAL NOT NULL,                         -- 0..1
    explanation TEXT NOT NULL DEFAULT '',        -- short, e.g. "健身×4, 增肌×1 in 4/9 posts; bio: 健身"
    terms TEXT NOT NULL DEFAULT '{}',            -- JSON: matching term -> count
    run_id INTEGER,
    PRIMARY KEY (user_id, target)
) WITHOUT ROWID;
CREATE INDEX user_relevance_target ON user_relevance(target, score);

-- Size of each audience at each run, for growth/shrinkage over time.
CREATE TABLE audience_history (
    audience_id INTEGER NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
    run_id INTEGER NOT NULL,
    size INTEGER NOT NULL,
    share REAL NOT NULL DEFAULT 0,
    joined INTEGER NOT NULL DEFAULT 0,           -- members new to this audience since its previous run
    left INTEGER NOT NULL DEFAULT 0,             -- members gone since its previous run
    at TEXT NOT NULL,
    PRIMARY KEY (audience_id, run_id)
) WITHOUT ROWID;

ALTER TABLE audiences ADD COLUMN centroid_terms TEXT NOT NULL DEFAULT '[]';  -- JSON: top c-TF-IDF terms with weights
ALTER TABLE audiences ADD COLUMN x REAL;                                     -- map position (mean of members)
ALTER TABLE audiences ADD COLUMN y REAL;
ALTER TABLE audiences ADD COLUMN target TEXT;                                -- seeded target it matches best, if any
ALTER TABLE audiences ADD COLUMN target_score REAL;                          -- mean member relevance to that target
