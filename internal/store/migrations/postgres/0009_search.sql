-- Full-text search over articles (an extension of the spec): a stored,
-- generated tsvector of title (weight A), description (B) and body (C),
-- English-stemmed, with a GIN index. Being generated, it is kept in the
-- same transaction as every write, COPY included.
ALTER TABLE articles ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A') ||
    setweight(to_tsvector('english', description), 'B') ||
    setweight(to_tsvector('english', body), 'C')
) STORED;
CREATE INDEX articles_search_idx ON articles USING gin (search);

-- Prefix lookups of users and tags compare bytes (text_pattern_ops), the
-- same order SQLite's indexes use, whatever the database's collation.
CREATE INDEX users_username_prefix_idx ON users (lower(username) text_pattern_ops);
CREATE INDEX tag_counts_prefix_idx ON tag_counts (tag text_pattern_ops);
