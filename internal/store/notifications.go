package store

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// AddNotification implements conduit.JobStore: the event is recorded under its key
// (a repeat stops there), then joins the user's unread notification of
// its group (one per article and kind; one for all follows), or starts
// one. The group's actor becomes the event's, its count of distinct
// actors grows if the actor is new to it, and it moves to the top of the
// user's list.
func (db *DB) AddNotification(ctx context.Context, e conduit.NotificationEvent) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		at := e.At.UnixMilli()
		res, err := tx.exec(ctx, `
			INSERT INTO notification_events (user_id, key, actor_id, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, e.UserID, e.Key, e.ActorID, at)
		if err := mustAffect(res, err); err != nil {
			return ignoreNotFound(err) // told already
		}
		group := e.Kind
		var article any // NULL for follows
		if e.ArticleID != 0 {
			group += ":" + strconv.FormatInt(e.ArticleID, 10)
			article = e.ArticleID
		}
		var seq int64
		if err := tx.queryRow(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM notifications WHERE user_id = ?`, e.UserID).Scan(&seq); err != nil {
			return err
		}
		var id int64
		if err := tx.queryRow(ctx, `
			INSERT INTO notifications (user_id, kind, group_key, article_id, actor_id, seq, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id, group_key) WHERE read_at IS NULL
			DO UPDATE SET actor_id = excluded.actor_id, seq = excluded.seq, updated_at = excluded.updated_at
			RETURNING id`, e.UserID, e.Kind, group, article, e.ActorID, seq, at, at).Scan(&id); err != nil {
			return err
		}
		var known bool
		if err := tx.queryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM notification_events WHERE notification_id = ? AND actor_id = ?)`,
			id, e.ActorID).Scan(&known); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE notification_events SET notification_id = ? WHERE user_id = ? AND key = ?`,
			id, e.UserID, e.Key); err != nil {
			return err
		}
		if known {
			return nil
		}
		_, err = tx.exec(ctx, `UPDATE notifications SET actors = actors + 1 WHERE id = ?`, id)
		return err
	})
}

// Notifications implements conduit.Store: newest activity first, after
// the cursor; one range of notifications_list_idx.
func (db *DB) Notifications(ctx context.Context, userID int64, limit int, after conduit.NotificationCursor) ([]conduit.Notification, error) {
	bound, args := "", []any{userID}
	if after.Seq > 0 {
		bound = ` AND (n.seq < ? OR (n.seq = ? AND n.id < ?))`
		args = append(args, after.Seq, after.Seq, after.ID)
	}
	rs, err := db.query(ctx, `
		SELECT n.id, n.kind, n.actors, n.seq, n.created_at, n.updated_at, n.read_at IS NOT NULL,
		       u.id, u.username, u.bio, u.image, a.slug, a.title
		FROM notifications n
		JOIN users u ON u.id = n.actor_id
		LEFT JOIN articles a ON a.id = n.article_id
		WHERE n.user_id = ?`+bound+`
		ORDER BY n.seq DESC, n.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []conduit.Notification{}
	for rs.Next() {
		var n conduit.Notification
		var created, updated int64
		var slug, title sql.NullString
		if err := rs.Scan(&n.ID, &n.Kind, &n.Others, &n.Seq, &created, &updated, &n.Read,
			&n.Actor.ID, &n.Actor.Username, &n.Actor.Bio, &n.Actor.Image, &slug, &title); err != nil {
			return nil, db.mapErr(err)
		}
		n.Others = max(n.Others-1, 0)
		n.CreatedAt, n.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		if slug.Valid {
			n.Article = &conduit.ArticleRef{Slug: slug.String, Title: title.String}
		}
		out = append(out, n)
	}
	return out, db.mapErr(rs.Err())
}

// UnreadNotifications implements conduit.Store: at most max index entries
// of the unread groups (notifications_unread_key) are counted.
func (db *DB) UnreadNotifications(ctx context.Context, userID int64, max int) (int, error) {
	var n int
	err := db.queryRow(ctx, `
		SELECT count(*) FROM (SELECT 1 FROM notifications WHERE user_id = ? AND read_at IS NULL LIMIT ?) x`,
		userID, max).Scan(&n)
	return n, db.mapErr(err)
}

// MarkNotificationsRead implements conduit.Store.
func (db *DB) MarkNotificationsRead(ctx context.Context, userID int64, now time.Time) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		_, err := tx.exec(ctx, `UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL`, now.UnixMilli(), userID)
		return err
	})
}

// ArticleAuthor implements conduit.JobStore.
func (db *DB) ArticleAuthor(ctx context.Context, articleID int64) (int64, error) {
	var id int64
	err := db.queryRow(ctx, `SELECT author_id FROM articles WHERE id = ?`, articleID).Scan(&id)
	return id, db.mapErr(err)
}

// CommentExists implements conduit.JobStore.
func (db *DB) CommentExists(ctx context.Context, commentID int64) (bool, error) {
	var ok bool
	err := db.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM comments WHERE id = ?)`, commentID).Scan(&ok)
	return ok, db.mapErr(err)
}
