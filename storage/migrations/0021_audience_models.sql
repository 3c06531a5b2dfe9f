-- The last full clustering, kept so a small re-analysis (a few new posts)
-- places new and changed users into the existing audiences instead of
-- re-clustering everyone. Only the newest row is kept.
CREATE TABLE analysis_models (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,                     -- the full run that fitted it
    created_at TEXT NOT NULL,
    k INTEGER NOT NULL,
    k_request TEXT NOT NULL,                     -- 'auto' or the number asked for
    settings_key TEXT NOT NULL,                  -- dictionary + targets + tier shares it was made with
    n_users INTEGER NOT NULL,
    n_posts INTEGER NOT NULL,
    changed_posts INTEGER NOT NULL DEFAULT 0,    -- posts cut since the fit (by incremental runs)
    incremental_runs INTEGER NOT NULL DEFAULT 0,
    model BLOB NOT NULL                          -- numpy .npz: vocabulary, idf, LSA components, centroids, ...
);
