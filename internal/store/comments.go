package store

import (
	"context"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// CreateComment inserts c and sets its ID.
func (db *DB) CreateComment(ctx context.Context, c *conduit.Comment) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		err := tx.queryRow(ctx, `
			INSERT INTO comments (article_id, author_id, body, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?)
			RETURNING id`,
			c.ArticleID, c.Author.ID, c.Body, c.CreatedAt, c.UpdatedAt,
		).Scan(&c.ID)
		if err != nil {
			return err
		}
		return tx.enqueue(ctx, conduit.CommentedJobs(c.ID, c.ArticleID, c.Author.ID))
	})
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

// Comments lists an article's comments, oldest first, in one query.
func (db *DB) Comments(ctx context.Context, viewerID, articleID int64) ([]conduit.Comment, error) {
	rows, err := db.query(ctx, commentSelect+` WHERE c.article_id = ? ORDER BY c.id`, viewerID, articleID)
	if err != nil {
		return nil, db.mapErr(err)
	}
	defer rows.Close()
	comments := []conduit.Comment{}
	for rows.Next() {
		c, err := scanComment(rows)
		if err != nil {
			return nil, db.mapErr(err)
		}
		comments = append(comments, c)
	}
	return comments, db.mapErr(rows.Err())
}

// CommentByID returns comment id of article articleID.
func (db *DB) CommentByID(ctx context.Context, articleID, id int64) (conduit.Comment, error) {
	c, err := scanComment(db.queryRow(ctx, commentSelect+` WHERE c.id = ? AND c.article_id = ?`, 0, id, articleID))
	return c, db.mapErr(err)
}

// DeleteComment removes the comment.
func (db *DB) DeleteComment(ctx context.Context, id int64) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.exec(ctx, `DELETE FROM comments WHERE id = ?`, id)
		return mustAffect(res, err)
	})
}
