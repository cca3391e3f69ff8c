-- The article ids alone, newest last, for paging the global list by offset.
-- The id is the table's rowid, so without this the page's ids are read
-- from the table itself: the rows, bodies included (~5 to a page at the
-- full scale), so an offset of 10,000 read ~2,000 table pages where this
-- index holds the same ids in ~30. A reader's page cache is emptied by
-- every commit of another connection (WAL), so those were read again for
-- nearly every deep page (docs/performance.md).
CREATE INDEX articles_id_idx ON articles (id);
