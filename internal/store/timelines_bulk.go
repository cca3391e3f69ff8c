package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// ErrTimelinesExist is returned by BuildTimelinesBulk on a database in
// which some user has a timeline already.
var ErrTimelinesExist = errors.New("some users have home timelines already: build the others with timeline.build jobs (conduit jobs build-timelines)")

// BulkTimelines reports a bulk build.
type BulkTimelines struct {
	Users       int64 // timelines built
	Rows        int64 // timeline rows written
	Celebrities int64 // authors whose articles are merged on read
}

// bulkUsers is how many users one transaction of BuildTimelinesBulk builds.
const bulkUsers = 2000

// BuildTimelinesBulk builds every user's home timeline with a few
// set-based statements per range of users, instead of one timeline.build
// job per user: it is for a database just loaded in bulk (conduit seed),
// which has no timeline yet, while nothing else writes to it. The result is
// what the jobs would make (the rule in timelines.go): the authors with
// more than opts.MaxFollowers followers become celebrities; every other
// followee's articles go into the follower's timeline, the newest
// opts.TimelineCap of them, the horizon just below; feed counts from
// follows.feed_counted. progress, if set, is told after each range.
func (db *DB) BuildTimelinesBulk(ctx context.Context, opts conduit.FeedOptions, progress func(BulkTimelines)) (BulkTimelines, error) {
	var out BulkTimelines
	var exist bool
	if err := db.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM timeline_state)`).Scan(&exist); err != nil {
		return out, db.mapErr(err)
	}
	if exist {
		return out, ErrTimelinesExist
	}
	var maxID int64
	if err := db.queryRow(ctx, `SELECT coalesce(max(id), 0) FROM users`).Scan(&maxID); err != nil {
		return out, db.mapErr(err)
	}
	err := db.tx(ctx, func(tx *sqlTx) error {
		// For good, as becameCelebrity does; no timeline exists yet, so
		// none holds their articles.
		res, err := tx.exec(ctx, `
			INSERT INTO fanout_authors (user_id, celebrity)
			SELECT followee_id, 1 FROM follows WHERE true GROUP BY followee_id HAVING count(*) > ?
			ON CONFLICT (user_id) DO UPDATE SET celebrity = 1`, opts.MaxFollowers)
		if err != nil {
			return err
		}
		out.Celebrities, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return out, fmt.Errorf("celebrities: %w", db.mapErr(err))
	}
	for lo := int64(1); lo <= maxID; lo += bulkUsers {
		hi := lo + bulkUsers - 1
		var users, rows int64
		err := db.tx(ctx, func(tx *sqlTx) error {
			var err error
			users, rows, err = buildRange(ctx, tx, lo, hi, opts)
			return err
		})
		if err != nil {
			return out, fmt.Errorf("timelines of users %d–%d: %w", lo, hi, db.mapErr(err))
		}
		out.Users += users
		out.Rows += rows
		if progress != nil {
			progress(out)
		}
	}
	if db.d.name == "postgres" {
		if _, err := db.write.ExecContext(ctx, `ANALYZE timelines, timeline_state, follows, fanout_authors`); err != nil {
			return out, db.mapErr(err)
		}
	} else if _, err := db.write.ExecContext(ctx, `ANALYZE`); err != nil {
		return out, db.mapErr(err)
	}
	return out, nil
}

// buildRange builds the timelines of the users with ids in [lo, hi], in
// one transaction. It reports how many users and rows it wrote.
func buildRange(ctx context.Context, tx *sqlTx, lo, hi int64, opts conduit.FeedOptions) (users, rows int64, err error) {
	// What each follow counts into its follower's feed count: the
	// followee's articles, unless merged on read.
	if _, err := tx.exec(ctx, `
		UPDATE follows SET feed_counted = coalesce((
			SELECT u.articles_count FROM users u
			WHERE u.id = follows.followee_id
			  AND NOT EXISTS (SELECT 1 FROM fanout_authors c WHERE c.user_id = u.id AND c.celebrity = 1)
		), 0)
		WHERE follower_id BETWEEN ? AND ?`, lo, hi); err != nil {
		return 0, 0, err
	}
	// Each user's newest cap+1 articles of non-celebrity followees (each
	// followee contributes at most its own newest cap+1: one bounded range
	// of articles_author_idx): the last of them, if there is one, becomes
	// the horizon below.
	res, err := tx.exec(ctx, `
		INSERT INTO timelines (user_id, article_id, author_id)
		SELECT user_id, id, author_id FROM (
			SELECT f.follower_id AS user_id, a.id, a.author_id,
			       row_number() OVER (PARTITION BY f.follower_id ORDER BY a.id DESC) AS n
			FROM follows f
			JOIN articles a ON a.author_id = f.followee_id
			WHERE f.follower_id BETWEEN ? AND ?
			  AND NOT EXISTS (SELECT 1 FROM fanout_authors c WHERE c.user_id = f.followee_id AND c.celebrity = 1)
			  AND a.id >= coalesce((
				SELECT b.id FROM articles b WHERE b.author_id = f.followee_id
				ORDER BY b.id DESC LIMIT 1 OFFSET ?), 0)
		) x
		WHERE n <= ?`, lo, hi, opts.TimelineCap, opts.TimelineCap+1)
	if err != nil {
		return 0, 0, err
	}
	if rows, err = res.RowsAffected(); err != nil {
		return 0, 0, err
	}
	res, err = tx.exec(ctx, `
		INSERT INTO timeline_state (user_id, ready, horizon, feed_count, size)
		SELECT u.id, 1,
		       CASE WHEN t.n > ? THEN t.oldest ELSE 0 END,
		       coalesce((SELECT sum(f.feed_counted) FROM follows f WHERE f.follower_id = u.id), 0),
		       coalesce(CASE WHEN t.n > ? THEN ? ELSE t.n END, 0)
		FROM users u
		LEFT JOIN (
			SELECT user_id, count(*) AS n, min(article_id) AS oldest FROM timelines
			WHERE user_id BETWEEN ? AND ? GROUP BY user_id
		) t ON t.user_id = u.id
		WHERE u.id BETWEEN ? AND ?`,
		opts.TimelineCap, opts.TimelineCap, opts.TimelineCap, lo, hi, lo, hi)
	if err != nil {
		return 0, 0, err
	}
	if users, err = res.RowsAffected(); err != nil {
		return 0, 0, err
	}
	// The horizon's own row is not kept: the timeline holds what is above.
	res, err = tx.exec(ctx, `
		DELETE FROM timelines
		WHERE (user_id, article_id) IN (
			SELECT user_id, horizon FROM timeline_state WHERE user_id BETWEEN ? AND ? AND horizon > 0)`, lo, hi)
	if err != nil {
		return 0, 0, err
	}
	gone, err := res.RowsAffected()
	return users, rows - gone, err
}
