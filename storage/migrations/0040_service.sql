-- The background service (`huaxiang run`): a record of every job run, the
-- lock row that keeps one scheduler per database, and the next run times
-- the running scheduler computed (for `huaxiang status`).
-- The schedule itself stays in the config; nothing here is pickled.

CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,                           -- stable job id: crawl:<query> | outcomes | analyze | plan | send
    kind TEXT NOT NULL,                          -- crawl | outcomes | analyze | plan | send
    trigger TEXT NOT NULL DEFAULT 'schedule',    -- schedule | catch-up | once
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',      -- running | ok | partial | failed | interrupted
    counts TEXT NOT NULL DEFAULT '{}',           -- JSON: what the job did
    error TEXT,                                  -- scrubbed of secrets
    pid INTEGER
);
CREATE INDEX job_runs_job ON job_runs(job, started_at);
CREATE INDEX job_runs_status ON job_runs(status);

-- At most one row: who runs the scheduler for this database.
CREATE TABLE service_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    token TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);

-- What the running scheduler will do next, refreshed with the heartbeat.
CREATE TABLE service_jobs (
    job TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    schedule TEXT NOT NULL,
    next_run_at TEXT,
    updated_at TEXT NOT NULL
);
