-- Counters for the lists, kept in the same transaction as the writes they
-- count, so that no request counts millions of rows: articlesCount of the
-- global list (counters 'articles'), of a tag's list and the popular tags
-- (tag_counts). Rows of tag_counts with 0 articles are deleted.

CREATE TABLE tag_counts (
    tag      TEXT PRIMARY KEY,
    articles INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tag_counts_popular_idx ON tag_counts (articles DESC, tag);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO tag_counts (tag, articles) SELECT tag, count(*) FROM article_tags GROUP BY tag;
INSERT INTO counters (name, value) SELECT 'articles', count(*) FROM articles;
