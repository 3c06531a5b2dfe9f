-- Which query found which user (tag queries list users, not posts): the
-- counterpart of post_queries, so a tag query's incremental stop only counts
-- users *it* has already seen.
CREATE TABLE user_queries (
    platform TEXT NOT NULL,
    uid TEXT NOT NULL,
    query TEXT NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (platform, uid, query)
) WITHOUT ROWID;
