-- fanout_authors.version: a number that every insert and every delete of
-- a celebrity's article raises, in the same transaction, whoever writes
-- (this process, another one on the same file, a bulk load). A feed page
-- reads the celebrities its viewer follows from fanout_authors anyway; with
-- the version beside each it can tell, at no further cost, whether what
-- the process keeps of that celebrity's newest articles (store/
-- celebcache.go) is still what the tables hold, instead of reading every
-- followed celebrity's articles again for every page (docs/performance.md,
-- Issue 14, fourth round).
ALTER TABLE fanout_authors ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER articles_celebrity_insert AFTER INSERT ON articles
BEGIN
    UPDATE fanout_authors SET version = version + 1
    WHERE user_id = NEW.author_id AND celebrity = 1;
END;

CREATE TRIGGER articles_celebrity_delete AFTER DELETE ON articles
BEGIN
    UPDATE fanout_authors SET version = version + 1
    WHERE user_id = OLD.author_id AND celebrity = 1;
END;
