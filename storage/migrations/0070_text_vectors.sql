-- Sentence vectors of cleaned post texts (nlp.encode), computed once per
-- distinct text and model. Keyed by the cleaned text's hash, not by post:
-- a repost or a copied slogan is embedded once, and a post whose counts
-- change keeps its vector. Vectors of a model no longer used are dropped by
-- the next full analysis that uses another.
CREATE TABLE text_vectors (
    text_key TEXT NOT NULL,                      -- storage.tokens.text_hash(post_tokens.clean)
    model TEXT NOT NULL,                         -- encoder name and version
    vector BLOB NOT NULL,                        -- little-endian float16
    PRIMARY KEY (text_key, model)
) WITHOUT ROWID;
