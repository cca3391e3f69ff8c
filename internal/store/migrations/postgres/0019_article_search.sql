-- article_search: the words of each article, apart from the article, for
-- the search (docs/performance.md, Issue 14, fifth round). It replaces the
-- tsvector of migration 0009 in articles, which a search of common words
-- read for every article it walked past, newest first, until 1,000
-- matched (~25,000 articles for two words): at ~1.1 KB each, with
-- positions and weights no query used, in rows of ~1.8 KB whose larger
-- third was compressed or moved to TOAST. Here each row holds only:
--   words              every word of the title, description and body,
--                      without positions (strip): what a search matches;
--   title_words        the title's words, and
--   description_words  the description's: what it ranks the matches by
--                      (10 per word in the title, 4 in the description,
--                      as on SQLite; the body only matches).
-- ~0.9 KB a row, none in TOAST: the walk reads a tenth of the pages.
-- Kept in the writing transaction by a trigger (COPY fires it too), and
-- deleted with its article.
CREATE TABLE article_search (
    article_id        bigint PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    words             tsvector NOT NULL,
    title_words       tsvector NOT NULL,
    description_words tsvector NOT NULL
);

CREATE FUNCTION article_search_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t tsvector := strip(to_tsvector('english', NEW.title));
    d tsvector := strip(to_tsvector('english', NEW.description));
BEGIN
    -- Every word is in the generated articles.search (0009), kept for the
    -- previous release (below): its words without weights and positions,
    -- rather than the body stemmed a second time. The release that drops
    -- the column stems them here.
    INSERT INTO article_search (article_id, words, title_words, description_words)
    VALUES (NEW.id, strip(NEW.search), t, d)
    ON CONFLICT (article_id) DO UPDATE
    SET words = EXCLUDED.words, title_words = EXCLUDED.title_words,
        description_words = EXCLUDED.description_words;
    RETURN NULL;
END
$$;

CREATE TRIGGER article_search_write AFTER INSERT OR UPDATE OF title, description, body ON articles
    FOR EACH ROW EXECUTE FUNCTION article_search_write();

-- The existing articles, oldest first (the search walks the primary key;
-- rows in its order share pages).
INSERT INTO article_search (article_id, words, title_words, description_words)
SELECT id, strip(search), strip(to_tsvector('english', title)), strip(to_tsvector('english', description))
FROM articles ORDER BY id;

CREATE INDEX article_search_words_idx ON article_search USING gin (words);
-- The words' frequencies, by which a search of a common word walks the
-- primary key and one of a rare word reads the GIN index: at once on a
-- database with articles (autovacuum would take a while). Not on an empty
-- one, which has nothing to count, so that a new database stays as
-- migrations leave it without statistics (the test suites' reused copies
-- are compared with their template on that).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM article_search) THEN
        ANALYZE article_search;
    END IF;
END
$$;

-- The old column (articles.search) and its GIN index stay for one
-- release: the previous release still searches through them, and a
-- migration must keep it working through a rolling update and after a
-- rollback (docs/operations.md, "Deploy a release"). A later release
-- drops them; dropping frees no space in the rows already written (each
-- frees its ~1.1 KB when next rewritten, or all at once with VACUUM FULL
-- articles).
