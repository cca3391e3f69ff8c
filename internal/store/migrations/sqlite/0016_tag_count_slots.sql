-- A tag's article count, spread over slot rows (see the PostgreSQL version
-- of this migration: there concurrent creates sharing a tag waited for its
-- row's lock). SQLite has one writer at a time and uses slot 0 alone; a
-- tag's count is the sum of its rows on both.
CREATE TABLE tag_count_slots (
    tag      TEXT    NOT NULL,
    slot     INTEGER NOT NULL,
    articles INTEGER NOT NULL,
    PRIMARY KEY (tag, slot)
) WITHOUT ROWID;
INSERT INTO tag_count_slots (tag, slot, articles) SELECT tag, 0, articles FROM tag_counts;
DROP TABLE tag_counts;
ALTER TABLE tag_count_slots RENAME TO tag_counts;
