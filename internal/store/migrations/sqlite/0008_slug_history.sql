-- Every slug an article has had, its current one included, so that links
-- made before a title change still find it. A slug belongs to one article
-- for as long as that article exists (the primary key keeps slugs unique
-- across history); deleting the article frees its slugs with it.
CREATE TABLE article_slugs (
    slug       TEXT PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX article_slugs_article_idx ON article_slugs (article_id);

INSERT INTO article_slugs (slug, article_id) SELECT slug, id FROM articles;
