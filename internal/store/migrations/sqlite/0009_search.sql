-- Full-text search over articles (an extension of the spec): an FTS5 index
-- of title, description and body, stemmed (porter) and without accents.
-- It is an external-content table over articles, kept by triggers in the
-- same transaction as every write to those columns.
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, description, body,
    content = 'articles', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO articles_fts (articles_fts) VALUES ('rebuild');

CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, description, body) VALUES (new.id, new.title, new.description, new.body);
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, description, body)
    VALUES ('delete', old.id, old.title, old.description, old.body);
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, description, body ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, description, body)
    VALUES ('delete', old.id, old.title, old.description, old.body);
    INSERT INTO articles_fts (rowid, title, description, body) VALUES (new.id, new.title, new.description, new.body);
END;
