-- Every slug an article has had, its current one included (see the SQLite
-- version of this migration).
CREATE TABLE article_slugs (
    slug       text PRIMARY KEY,
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE
);
CREATE INDEX article_slugs_article_idx ON article_slugs (article_id);

INSERT INTO article_slugs (slug, article_id) SELECT slug, id FROM articles;
