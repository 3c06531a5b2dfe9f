-- Issue 15: audiences whose members barely hang together are flagged, and
-- users who fit no audience stay unassigned (user_stats.audience_id NULL,
-- no memberships row; nothing to add for that).
ALTER TABLE audiences ADD COLUMN mixed INTEGER NOT NULL DEFAULT 0;   -- 1: members barely stand out from everyone else
ALTER TABLE audiences ADD COLUMN cohesion REAL;                      -- members' median distinctiveness / typical (1 = typical)
