-- A tag's article count, spread over slot rows as the global count is
-- (0015). Every create or delete of an article with a tag moved that tag's
-- one row and held its lock until the commit's WAL flush, so creates that
-- shared a tag committed one at a time. A writer now adds to the tag's row
-- of its connection's slot (store.counterSlot); a tag's count is the sum of
-- its rows. A row may go negative, or stay at 0 for a tag no longer used;
-- only the sums mean anything, and a row of the writer's own slot that
-- reaches 0 is deleted.
ALTER TABLE tag_counts ADD COLUMN slot integer NOT NULL DEFAULT 0;
ALTER TABLE tag_counts ALTER COLUMN slot DROP DEFAULT;
ALTER TABLE tag_counts DROP CONSTRAINT tag_counts_pkey;
ALTER TABLE tag_counts ADD PRIMARY KEY (tag, slot);
-- Popular tags are ordered by a sum now, not by one row's value.
DROP INDEX tag_counts_popular_idx;
