-- Why each action was proposed and written the way it is (issue 13).
-- target: the declared target audience ([[audiences]].name) the action serves;
-- target_relevance: the user's relevance to it when planned (user_relevance.score);
-- draft_reason: JSON object, e.g. {"post_kind": "question", "phrases": [...], "topics": [...],
--   "library": {"id": ..., "text": ...}, "template": ..., "drafter": "builtin" | "template" | "llm",
--   "fallback": "..."}.
ALTER TABLE queue ADD COLUMN target TEXT;
ALTER TABLE queue ADD COLUMN target_relevance REAL;
ALTER TABLE queue ADD COLUMN draft_reason TEXT;
