-- Review accounts and their sessions. Why accounts: "approved by" must name
-- a person the team set up, with a role that allows approving; a free-text
-- name typed into a box proves nothing. Passwords are stored as a salted
-- standard-library KDF hash (scrypt), never in clear.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'approver', 'admin')),
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    last_failed_at TEXT,
    last_login_at TEXT
);

-- A sign-in: the cookie carries a random id whose SHA-256 is stored here.
CREATE TABLE review_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    csrf TEXT NOT NULL
);
CREATE INDEX review_sessions_expiry ON review_sessions(expires_at);
