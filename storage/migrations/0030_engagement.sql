-- Engagement: who approved what, what was sent and how it went, who must
-- never be contacted. Extends the queue from 0001; new tables alongside.

ALTER TABLE queue ADD COLUMN target_uid TEXT;          -- platform uid of the target (opt-out/blocklist checks)
ALTER TABLE queue ADD COLUMN post_pid TEXT;            -- platform pid of the target post
ALTER TABLE queue ADD COLUMN text_key TEXT;            -- normalised text, for the no-identical-text rule
ALTER TABLE queue ADD COLUMN approved_by TEXT;
ALTER TABLE queue ADD COLUMN approved_at TEXT;
ALTER TABLE queue ADD COLUMN reviewed_by TEXT;         -- last person who approved/rejected/edited
ALTER TABLE queue ADD COLUMN sent_at TEXT;             -- when the send request started (touch time)
ALTER TABLE queue ADD COLUMN remote_id TEXT;           -- the platform's id of our comment/repost
ALTER TABLE queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN send_mode TEXT;           -- mode of the last attempt
ALTER TABLE queue ADD COLUMN last_error TEXT;
ALTER TABLE queue ADD COLUMN explanation TEXT;         -- one sentence explaining the score

CREATE INDEX queue_target ON queue(platform, target_uid);
CREATE INDEX queue_post ON queue(post_id);
CREATE INDEX queue_sent_at ON queue(sent_at);
CREATE INDEX queue_text_key ON queue(text_key);
CREATE INDEX audit_item ON audit_log(item_id);

-- People who asked not to be contacted (by a reply like 别再@我, or by hand).
-- The evidence (their words, the comment id) is kept.
CREATE TABLE optouts (
    platform TEXT NOT NULL,
    uid TEXT NOT NULL,
    origin TEXT NOT NULL,                        -- reply | manual
    evidence TEXT NOT NULL DEFAULT '',
    evidence_id TEXT,                            -- platform id of the comment that opted out
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (platform, uid)
);

-- Users the campaign never engages (besides [engagement].blocklist in config).
CREATE TABLE blocklist (
    platform TEXT NOT NULL,
    uid TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (platform, uid)
);

-- One row per send attempt, written before the request (status 'started')
-- and completed after; a row left 'started' marks a crash mid-request.
CREATE TABLE send_log (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES queue(id),
    attempt INTEGER NOT NULL,
    mode TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL DEFAULT 'started',      -- started | sent | failed | unknown | handed_out | reconciled_sent | reconciled_absent
    remote_id TEXT,
    error TEXT,
    text TEXT NOT NULL
);
CREATE INDEX send_log_item ON send_log(item_id);

-- What happened after a send: replies, likes, follow-backs, opt-outs.
CREATE TABLE outcomes (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES queue(id),
    kind TEXT NOT NULL,                          -- reply | like | follow_back | optout
    remote_id TEXT NOT NULL DEFAULT '',          -- the comment id (or '' when there is none)
    from_uid TEXT,
    text TEXT,
    at TEXT NOT NULL,
    UNIQUE (item_id, kind, remote_id)
);
CREATE INDEX outcomes_item ON outcomes(item_id);
