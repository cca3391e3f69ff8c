-- The global list's article count, spread over slot rows. One counters row
-- updated by every article create and delete made creates commit one at a
-- time: each held that row's lock until its commit's WAL flush, and the
-- next waited for it. A writer now adds to the slot of its connection
-- (store.articleSlot: the backend pid modulo 16), so creates on different
-- connections rarely wait for each other; the count is the sum of the
-- slots. A slot may go negative (an article created on one connection and
-- deleted on another); only the sum means anything.
CREATE TABLE article_count_slots (
    slot  integer PRIMARY KEY,
    value bigint  NOT NULL
);

INSERT INTO article_count_slots (slot, value)
SELECT 0, coalesce((SELECT value FROM counters WHERE name = 'articles'), 0);
DELETE FROM counters WHERE name = 'articles';
