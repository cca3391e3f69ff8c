-- articles.comments_count: how many comments an article has, kept in the
-- same transaction as comment writes. It is the commentsCount of a page of
-- comments without counting them, and what bounds the comments of one
-- article (conduit.MaxCommentsPerArticle).
-- comments_author_idx serves the bound on one author's comments on one
-- article (conduit.MaxCommentsPerAuthor), and deleting a user's comments.
-- (Versions 0005-0009 are taken by other branches' migrations.)

ALTER TABLE articles ADD COLUMN comments_count INTEGER NOT NULL DEFAULT 0;

UPDATE articles SET comments_count = c.n
FROM (SELECT article_id, count(*) AS n FROM comments GROUP BY article_id) AS c
WHERE articles.id = c.article_id;

CREATE INDEX comments_author_idx ON comments (author_id, article_id);

-- articles.body_html: the body rendered to sanitized HTML for the site by
-- the renderer generation body_html_version (0: not rendered). The site
-- renders a version of an article on its first view and stores it here, so
-- reads do not render; existing rows are rendered so, lazily, and nothing
-- is rendered during this migration. Edits clear both columns.
ALTER TABLE articles ADD COLUMN body_html TEXT NOT NULL DEFAULT '';
ALTER TABLE articles ADD COLUMN body_html_version INTEGER NOT NULL DEFAULT 0;
