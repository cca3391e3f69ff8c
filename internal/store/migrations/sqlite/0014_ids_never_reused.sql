-- Article and comment ids are never given twice. SQLite hands the next
-- insert the largest rowid plus one, so deleting the newest article freed
-- its id for the next one; but ids name articles and comments in queued
-- jobs, job keys, caches and links: a delete job that ran after the new
-- article's publish job took the new article out of its followers' feeds.
-- id_high keeps the largest id ever deleted per table, and inserts take
-- an id above both it and every id in use (store.nextID). On PostgreSQL
-- the sequences never reuse an id.
CREATE TABLE id_high (
    name TEXT    PRIMARY KEY,
    id   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER articles_id_high AFTER DELETE ON articles BEGIN
    INSERT INTO id_high (name, id) VALUES ('articles', OLD.id)
    ON CONFLICT (name) DO UPDATE SET id = max(id, excluded.id);
END;

CREATE TRIGGER comments_id_high AFTER DELETE ON comments BEGIN
    INSERT INTO id_high (name, id) VALUES ('comments', OLD.id)
    ON CONFLICT (name) DO UPDATE SET id = max(id, excluded.id);
END;
