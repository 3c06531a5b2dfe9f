-- What a marketer reads on a real Weibo post and profile, kept as columns
-- instead of only inside the raw JSON (issue 14). Every column is nullable:
-- a source that does not know a fact leaves it NULL, and an upsert never
-- overwrites a known value with NULL.

-- Posts: who replied to whom, and what the post carries.
ALTER TABLE posts ADD COLUMN reply_to TEXT;          -- comment replied to (NULL for a top-level comment or a post)
ALTER TABLE posts ADD COLUMN thread_root TEXT;       -- top-level comment of the thread a reply sits in
ALTER TABLE posts ADD COLUMN source TEXT;            -- client/device it was posted from ("iPhone 15 Pro")
ALTER TABLE posts ADD COLUMN pic_count INTEGER;      -- number of pictures
ALTER TABLE posts ADD COLUMN pic_urls TEXT;          -- JSON list of picture URLs
ALTER TABLE posts ADD COLUMN video_type TEXT;        -- page_info.type of an attached video ("video", "live")
ALTER TABLE posts ADD COLUMN video_plays INTEGER;    -- play count ("345万次播放" -> 3450000)
ALTER TABLE posts ADD COLUMN edit_count INTEGER;     -- times the author edited it
ALTER TABLE posts ADD COLUMN language TEXT;          -- ISO 639 code when the platform says (Mastodon)
ALTER TABLE posts ADD COLUMN counts_floor TEXT;      -- JSON list of count columns that are lower bounds ("100万+")

-- Users: account type and the profile details of the INFO page.
ALTER TABLE users ADD COLUMN verified_type INTEGER;  -- Weibo: -1 none, 0 personal (orange V), 1-7 organisations (blue V), 200/220 达人
ALTER TABLE users ADD COLUMN ip_location TEXT;       -- IP属地 shown on the profile
ALTER TABLE users ADD COLUMN birthday TEXT;
ALTER TABLE users ADD COLUMN education TEXT;         -- school(s) as shown
ALTER TABLE users ADD COLUMN company TEXT;
ALTER TABLE users ADD COLUMN registered_at TEXT;     -- account creation date
ALTER TABLE users ADD COLUMN is_bot INTEGER;         -- the account says it is automated (Mastodon "bot")
ALTER TABLE users ADD COLUMN counts_floor TEXT;      -- JSON list of count columns that are lower bounds
