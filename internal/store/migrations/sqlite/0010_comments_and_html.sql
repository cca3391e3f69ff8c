-- comment_counts: how many comments each article has (no row: none), kept
-- in the same transaction as comment writes. It is the commentsCount of a
-- page of comments without counting them, and the row whose lock makes
-- concurrent comments on one article take turns while the bound on its
-- comments (conduit.MaxCommentsPerArticle) is checked. A table of its own,
-- like tag_counts, so that neither this backfill nor each comment rewrites
-- the wide article row (measured on a quarter of the benchmark dataset,
-- SQLite: 0.45 s to fill this table, 8.9 s to update a column of articles).
-- Deleting an article deletes its row (there is no foreign key, as for
-- tag_counts, so that a reset can truncate the tables it fills).
-- comments_author_idx serves the bound on one author's comments on one
-- article (conduit.MaxCommentsPerAuthor), and deleting a user's comments.
-- (Versions 0005-0009 are taken by other branches' migrations.)

CREATE TABLE comment_counts (
    article_id INTEGER PRIMARY KEY,
    comments   INTEGER NOT NULL
);
INSERT INTO comment_counts (article_id, comments)
SELECT article_id, count(*) FROM comments GROUP BY article_id;

CREATE INDEX comments_author_idx ON comments (author_id, article_id);

-- articles.body_html: the body rendered to sanitized HTML for the site by
-- the renderer generation body_html_version (0: not rendered). The site
-- renders a version of an article on its first view and stores it here, so
-- reads do not render; existing rows are rendered so, lazily, and nothing
-- is rendered during this migration. Edits clear both columns.
ALTER TABLE articles ADD COLUMN body_html TEXT NOT NULL DEFAULT '';
ALTER TABLE articles ADD COLUMN body_html_version INTEGER NOT NULL DEFAULT 0;
