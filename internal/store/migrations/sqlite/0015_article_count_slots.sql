-- The global list's article count, spread over slot rows (see the
-- PostgreSQL version of this migration: there concurrent creates waited
-- for one row's lock). SQLite has one writer at a time, so it uses slot 0
-- alone; the count is the sum of the slots on both.
CREATE TABLE article_count_slots (
    slot  INTEGER PRIMARY KEY,
    value INTEGER NOT NULL
);

INSERT INTO article_count_slots (slot, value)
SELECT 0, coalesce((SELECT value FROM counters WHERE name = 'articles'), 0);
DELETE FROM counters WHERE name = 'articles';
