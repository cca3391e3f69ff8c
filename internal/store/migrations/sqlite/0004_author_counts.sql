-- users.articles_count: how many articles each user wrote, kept in the
-- same transaction as article creates and deletes. It makes the count of
-- an author's list one row, and the count of a feed a sum over the
-- followees' rows (one primary-key probe per followee) instead of a walk
-- over every article they wrote (81,784 index entries for a user following
-- 1,000 accounts in the full benchmark dataset).
-- (Version 0003 is taken by another branch's migration.)

ALTER TABLE users ADD COLUMN articles_count INTEGER NOT NULL DEFAULT 0;

UPDATE users SET articles_count = c.n
FROM (SELECT author_id, count(*) AS n FROM articles GROUP BY author_id) AS c
WHERE users.id = c.author_id;
