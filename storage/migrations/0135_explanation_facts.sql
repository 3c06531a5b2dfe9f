-- The facts behind each explanation a reviewer reads, so the sentence is written at display
-- time in the configured language ([ui] language) from bot/i18n.py's catalogue.
-- queue.explanation_facts: JSON object from the planner, e.g. {"v": 1, "score": 0.78, "tier": "leader",
--   "audience": "新手妈妈", "relevance": 0.98, "followers": 2800, "age_h": 30, "interactions": 270, ...}.
--   Rows without it (planned before this migration) still show their stored English explanation.
-- user_relevance.facts: JSON object from the analysis, e.g. {"score": 0.98, "rank": 1, "n": 190,
--   "posts": ["..."], "terms": {"辅食": 3}, "seeds": ["辅食"]}.
ALTER TABLE queue ADD COLUMN explanation_facts TEXT;
ALTER TABLE user_relevance ADD COLUMN facts TEXT;
