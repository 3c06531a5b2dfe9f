-- Exports that left the database: what, when, in which form, with which
-- filters and from which analysis run. Why a log as well as the sidecar file:
-- sidecars travel with the export; the log stays, so the team can answer
-- "who has a copy of this audience list?" later.
CREATE TABLE export_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    what TEXT NOT NULL,                          -- audience | memberships | queue | actions
    subject TEXT,                                -- e.g. the audience id
    format TEXT NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL DEFAULT 0,
    filters TEXT NOT NULL DEFAULT '{}',          -- JSON
    analysis_run_id INTEGER,
    pseudonymised INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT
);
CREATE INDEX export_log_at ON export_log(at);
