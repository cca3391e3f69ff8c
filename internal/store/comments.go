package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/idemkey"
)

// CreateComment inserts c and sets its ID, unless the article has
// max.PerArticle comments already, or max.PerAuthor from c's author
// (*conduit.LimitError). The article's counter row is written first: its
// lock makes concurrent comments on one article take turns, so the bounds
// hold exactly on PostgreSQL too.
func (db *DB) CreateComment(ctx context.Context, c *conduit.Comment, max conduit.CommentLimits) error {
	if db.d.name == "postgres" {
		return db.createCommentPG(ctx, c, max)
	}
	return db.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.exec(ctx, `
			INSERT INTO comment_counts (article_id, comments) VALUES (?, 1)
			ON CONFLICT (article_id) DO UPDATE SET comments = comment_counts.comments + 1
			WHERE comment_counts.comments < ?`, c.ArticleID, max.PerArticle)
		err = mustAffect(res, err)
		if errors.Is(err, conduit.ErrNotFound) { // the counter is at the bound
			return &conduit.LimitError{Name: "per article", Max: max.PerArticle}
		}
		if err != nil {
			return err
		}
		// One author's comments on the article: a range of
		// comments_author_idx, at most max.PerAuthor entries.
		var mine int
		if err := tx.queryRow(ctx, `
			SELECT count(*) FROM (
				SELECT 1 FROM comments WHERE author_id = ? AND article_id = ? LIMIT ?
			) AS mine`, c.Author.ID, c.ArticleID, max.PerAuthor).Scan(&mine); err != nil {
			return err
		}
		if mine >= max.PerAuthor {
			return &conduit.LimitError{Name: "per author on one article", Max: max.PerAuthor}
		}
		// A deleted article fails here (foreign key): ErrNotFound.
		err = tx.queryRow(ctx, `
			INSERT INTO comments (id, article_id, author_id, body, created_at, updated_at)
			VALUES (`+nextID(tx.d, "comments")+`, ?, ?, ?, ?, ?)
			RETURNING id`,
			c.ArticleID, c.Author.ID, c.Body, c.CreatedAt, c.UpdatedAt,
		).Scan(&c.ID)
		if err != nil {
			return err
		}
		return tx.enqueue(ctx, conduit.CommentedJobs(c.ID, c.ArticleID, c.Author.ID))
	})
}

// createCommentPG is CreateComment in two PostgreSQL statements instead of
// four or five, with the same checks in the same order:
//  1. the article's counter moves up unless at its bound (which takes the
//     counter's row lock: commenters on one article queue here), and the
//     comment's id is drawn from its sequence, so that
//  2. one statement can count the author's comments (in a snapshot taken
//     after the lock, so a comment committed meanwhile is counted, as
//     with a statement of its own), insert the comment under its bound and
//     enqueue its jobs, which name the id; past the author's bound it
//     takes back the counter's move, so that its COMMIT can be sent with
//     it.
//
// Without an idempotency claim to mark, the transaction is pipelined on
// one pooled connection (createCommentPipelined): BEGIN with statement 1,
// then statement 2 with COMMIT, two round trips instead of four, so the
// counter's row is held one round trip less.
func (db *DB) createCommentPG(ctx context.Context, c *conduit.Comment, max conduit.CommentLimits) error {
	if _, claimed := idemkey.ClaimFrom(ctx); !claimed {
		return db.createCommentPipelined(ctx, c, max)
	}
	return db.tx(ctx, func(tx *sqlTx) error {
		var counted, id int64
		if err := tx.queryRow(ctx, commentCount, c.ArticleID, max.PerArticle).Scan(&counted, &id); err != nil {
			return err
		}
		if counted == 0 { // the counter is at the bound
			return &conduit.LimitError{Name: "per article", Max: max.PerArticle}
		}
		q, args := commentInsert(ctx, c, id, max)
		var added, queued int64
		if err := tx.queryRow(ctx, q, args...).Scan(&added, &queued); err != nil {
			return err
		}
		if added == 0 {
			return &conduit.LimitError{Name: "per author on one article", Max: max.PerAuthor}
		}
		c.ID = id
		tx.enqueued = queued > 0
		return nil
	})
}

// commentCount is createCommentPG's statement 1: whether the counter
// moved, and the new comment's id.
const commentCount = `
	WITH counted AS (
		INSERT INTO comment_counts (article_id, comments) VALUES (?, 1)
		ON CONFLICT (article_id) DO UPDATE SET comments = comment_counts.comments + 1
		WHERE comment_counts.comments < ?
		RETURNING 1)
	SELECT (SELECT count(*) FROM counted), nextval(pg_get_serial_sequence('comments', 'id'))`

// commentInsert is createCommentPG's statement 2 for the comment with id:
// it answers whether the comment was added and how many jobs were queued.
// A deleted article fails it (foreign key): ErrNotFound.
func commentInsert(ctx context.Context, c *conduit.Comment, id int64, max conduit.CommentLimits) (string, []any) {
	values, jargs := jobValues(ctx, conduit.CommentedJobs(id, c.ArticleID, c.Author.ID), "::")
	args := []any{c.Author.ID, c.ArticleID, max.PerAuthor,
		id, c.ArticleID, c.Author.ID, c.Body, c.CreatedAt, c.UpdatedAt, max.PerAuthor}
	args = append(args, jargs...)
	args = append(args, c.ArticleID)
	return `
		WITH mine AS (
			SELECT count(*) AS n FROM (
				SELECT 1 FROM comments WHERE author_id = ? AND article_id = ? LIMIT ?
			) AS m),
		added AS (
			INSERT INTO comments (id, article_id, author_id, body, created_at, updated_at)
			SELECT ?::bigint, ?::bigint, ?::bigint, ?::text, ?::timestamptz, ?::timestamptz FROM mine WHERE n < ?
			RETURNING id),
		queued AS (
			INSERT INTO jobs (kind, key, payload, trace, created_at, run_at)
			SELECT v.* FROM (VALUES ` + values + `) AS v
			WHERE EXISTS (SELECT 1 FROM added) RETURNING 1),
		uncounted AS (
			UPDATE comment_counts SET comments = comments - 1
			WHERE article_id = ? AND NOT EXISTS (SELECT 1 FROM added))
		SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM queued)`, args
}

// createCommentPipelined runs createCommentPG's transaction on one pooled
// connection in two round trips (pgx batches: each is sent at once and
// answered at once): BEGIN and statement 1, then statement 2 and COMMIT.
// Statement 2 still starts after statement 1 has taken the counter's
// lock, in a snapshot of its own. Whatever fails, or the article's bound,
// ends in a ROLLBACK; a connection left in a transaction is not given
// back to the pool (pgxpool destroys it).
func (db *DB) createCommentPipelined(ctx context.Context, c *conduit.Comment, max conduit.CommentLimits) error {
	bctx, cancel := db.bound(ctx)
	defer cancel()
	conn, err := db.pool.Acquire(bctx)
	if err != nil {
		return db.mapErr(err)
	}
	defer conn.Release()
	rollback := func(err error) error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), db.opTimeout)
		defer cancel()
		conn.Exec(rctx, "ROLLBACK") // a failure leaves the transaction open: Release destroys the connection
		return db.mapErr(err)
	}
	var counted, id int64
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(db.d.rebind(commentCount), c.ArticleID, max.PerArticle).QueryRow(func(r pgx.Row) error {
		return r.Scan(&counted, &id)
	})
	if err := conn.SendBatch(bctx, b).Close(); err != nil {
		return rollback(err)
	}
	if counted == 0 { // the counter is at the bound
		return rollback(&conduit.LimitError{Name: "per article", Max: max.PerArticle})
	}
	var added, queued int64
	q, args := commentInsert(ctx, c, id, max)
	b = &pgx.Batch{}
	b.Queue(db.d.rebind(q), args...).QueryRow(func(r pgx.Row) error {
		return r.Scan(&added, &queued)
	})
	b.Queue("COMMIT")
	if err := conn.SendBatch(bctx, b).Close(); err != nil {
		return rollback(err)
	}
	conn.Release() // back to the pool before what follows the commit
	if added == 0 {
		return &conduit.LimitError{Name: "per author on one article", Max: max.PerAuthor}
	}
	c.ID = id
	return db.committedOnce(ctx, &sqlTx{d: db.d, enqueued: queued > 0})
}

const commentSelect = `
	SELECT c.id, c.article_id, c.body, c.created_at, c.updated_at,
	       u.id, u.username, u.bio, u.image,
	       EXISTS (SELECT 1 FROM follows fo WHERE fo.follower_id = ? AND fo.followee_id = c.author_id)
	FROM comments c
	JOIN users u ON u.id = c.author_id`

func scanComment(row interface{ Scan(...any) error }) (conduit.Comment, error) {
	var c conduit.Comment
	err := row.Scan(&c.ID, &c.ArticleID, &c.Body, &c.CreatedAt, &c.UpdatedAt,
		&c.Author.ID, &c.Author.Username, &c.Author.Bio, &c.Author.Image, &c.Author.Following)
	return c, err
}

// Comments returns a page of an article's comments, newest first, and
// their count: the article's counter row, then f.Limit+1 entries of
// comments_article_idx (article_id, id) walked backwards from f.Before
// with their rows, so a page costs the same however many comments the
// article has and however deep the page is.
func (db *DB) Comments(ctx context.Context, viewerID, articleID int64, f conduit.CommentFilter) (conduit.CommentPage, error) {
	page := conduit.CommentPage{Comments: []conduit.Comment{}}
	if err := db.queryRow(ctx, `
		SELECT coalesce((SELECT comments FROM comment_counts WHERE article_id = ?), 0)`, articleID).Scan(&page.Count); err != nil {
		return page, db.mapErr(err)
	}
	if page.Count == 0 {
		return page, nil
	}
	args := []any{viewerID, articleID}
	if f.Before > 0 {
		args = append(args, db.commentBound(articleID, f.Before)...)
	}
	rows, err := db.query(ctx, db.commentPage(f.Before > 0), append(args, f.Limit+1)...)
	if err != nil {
		return page, db.mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanComment(rows)
		if err != nil {
			return page, db.mapErr(err)
		}
		page.Comments = append(page.Comments, c)
	}
	if err := rows.Err(); err != nil {
		return page, db.mapErr(err)
	}
	if len(page.Comments) > f.Limit {
		page.Comments = page.Comments[:f.Limit]
		page.Next = page.Comments[f.Limit-1].ID
	}
	return page, nil
}

// commentPage is the query of a page of comments, newest first: its
// arguments are the viewer, the article, the keyset bound (bounded only,
// see commentBound) and the limit. It walks comments_article_idx
// (article_id, id) backwards from the bound.
func (db *DB) commentPage(bounded bool) string {
	bound := ""
	if bounded {
		bound = ` AND c.id < ?`
		if db.d.name == "postgres" {
			// Written so, the bound is a condition on the article's index
			// only. As "c.id < ?" it suits the primary key too, which
			// PostgreSQL then walks down from the bound when it expects
			// the article's comments to be common, reading and dropping
			// every comment of other articles on the way (measured: ten
			// rows read per row kept when the article had a tenth of all
			// comments).
			bound = ` AND (c.article_id, c.id) < (?, ?)`
		}
	}
	return commentSelect + ` WHERE c.article_id = ?` + bound + ` ORDER BY c.id DESC LIMIT ?`
}

// commentBound is the arguments of commentPage's keyset bound.
func (db *DB) commentBound(articleID, before int64) []any {
	if db.d.name == "postgres" {
		return []any{articleID, before}
	}
	return []any{before}
}

// CommentByID returns comment id of article articleID.
func (db *DB) CommentByID(ctx context.Context, articleID, id int64) (conduit.Comment, error) {
	c, err := scanComment(db.queryRow(ctx, commentSelect+` WHERE c.id = ? AND c.article_id = ?`, 0, id, articleID))
	return c, db.mapErr(err)
}

// DeleteComment removes the comment and counts it out of its article.
func (db *DB) DeleteComment(ctx context.Context, id int64) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		var articleID int64
		err := tx.queryRow(ctx, `DELETE FROM comments WHERE id = ? RETURNING article_id`, id).Scan(&articleID)
		if errors.Is(err, sql.ErrNoRows) {
			return conduit.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, `UPDATE comment_counts SET comments = comments - 1 WHERE article_id = ?`, articleID)
		return err
	})
}
