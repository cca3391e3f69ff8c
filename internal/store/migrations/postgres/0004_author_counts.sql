-- users.articles_count: how many articles each user wrote, kept in the
-- same transaction as article creates and deletes (see the SQLite version
-- of this migration).

ALTER TABLE users ADD COLUMN articles_count bigint NOT NULL DEFAULT 0;

UPDATE users SET articles_count = c.n
FROM (SELECT author_id, count(*) AS n FROM articles GROUP BY author_id) AS c
WHERE users.id = c.author_id;
