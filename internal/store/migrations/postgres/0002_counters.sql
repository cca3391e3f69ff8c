-- Counters for the lists, kept in the same transaction as the writes they
-- count (see the SQLite version of this migration).

CREATE TABLE tag_counts (
    tag      text PRIMARY KEY,
    articles bigint NOT NULL
);
CREATE INDEX tag_counts_popular_idx ON tag_counts (articles DESC, tag);

CREATE TABLE counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);

INSERT INTO tag_counts (tag, articles) SELECT tag, count(*) FROM article_tags GROUP BY tag;
INSERT INTO counters (name, value) SELECT 'articles', count(*) FROM articles;
