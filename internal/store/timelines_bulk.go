package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"

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

// bulkUsers is how many users one transaction of BuildTimelinesBulk
// builds: enough that each statement's fixed costs are spread over many
// rows, few enough that one range's window sort (up to TimelineCap+1 rows
// per user, sorted in memory) stays small.
const bulkUsers = 20000

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
	err := db.bulkTx(ctx, func(tx *sqlTx) error {
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
	restore, err := db.bulkSession(ctx)
	if err != nil {
		return out, err
	}
	defer restore()
	for lo := int64(1); lo <= maxID; lo += bulkUsers {
		hi := lo + bulkUsers - 1
		var users, rows int64
		err := db.bulkTx(ctx, func(tx *sqlTx) error {
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
	err = db.bulkTx(ctx, func(tx *sqlTx) error {
		if _, err := tx.exec(ctx, timelinesArticleIdx); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		analyze := `ANALYZE`
		if db.d.name == "postgres" {
			analyze = `ANALYZE timelines, timeline_state, follows, fanout_authors`
		}
		_, err := tx.exec(ctx, analyze)
		return err
	})
	return out, db.mapErr(err)
}

// bulkTx runs fn in a write transaction of the bulk build. On PostgreSQL
// its statements run without the server's statement timeout (at full
// scale one range, or the index build, takes minutes; the build is a
// one-off that is waited for), commits are not waited for (a crash may
// lose the last ranges' commits, and a build cut short is redone either
// way), and its sorts and the index build get more memory.
func (db *DB) bulkTx(ctx context.Context, fn func(tx *sqlTx) error) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		if db.d.name == "postgres" {
			for _, q := range []string{`SET LOCAL statement_timeout = 0`, `SET LOCAL synchronous_commit = off`,
				`SET LOCAL work_mem = '256MB'`, `SET LOCAL maintenance_work_mem = '512MB'`} {
				if _, err := tx.exec(ctx, q); err != nil {
					return err
				}
			}
		}
		return fn(tx)
	})
}

// buildRange builds the timelines of the users with ids in [lo, hi], in
// one transaction. It reports how many users and rows it wrote.
func buildRange(ctx context.Context, tx *sqlTx, lo, hi int64, opts conduit.FeedOptions) (users, rows int64, err error) {
	if _, err := tx.exec(ctx, countFollowsSQL, lo, hi); err != nil {
		return 0, 0, err
	}
	// Each user's newest cap+1 articles of non-celebrity followees (each
	// followee contributes at most its own newest cap+1: one bounded range
	// of articles_author_idx): the last of them, if there is one, becomes
	// the horizon below. In primary-key order, so that the rows append to
	// the table's b-tree (users come in id order, range after range).
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
		WHERE n <= ?
		ORDER BY user_id, id`, lo, hi, opts.TimelineCap, opts.TimelineCap+1)
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

// timelinesArticleIdx is the definition of the timelines' secondary index
// (migration 0012), which the bulk build drops and creates again at the
// end: one sort of every row instead of an insert at a random place of the
// index per row, most of them a page the cache no longer holds.
const timelinesArticleIdx = `CREATE INDEX IF NOT EXISTS timelines_article_idx ON timelines (article_id)`

// bulkSession readies the database for the bulk build, and returns what
// puts it back (the index is created again even if the build failed, so
// that the schema is whole). On SQLite, the write connection (the only
// one: the pragmas stay on it) runs without syncing, as the seeder's
// loader does: the build is a one-off, redone from the tables if the
// machine fails, and with a cache large enough for the ranges' pages and
// helper threads for its sorts.
func (db *DB) bulkSession(ctx context.Context) (restore func(), err error) {
	var undo []string
	restore = func() {
		// Not the build's context: it may be what ended the build.
		bg := context.WithoutCancel(ctx)
		db.write.ExecContext(bg, timelinesArticleIdx)
		for _, q := range undo {
			db.write.ExecContext(bg, q)
		}
	}
	if db.d.name == "sqlite" {
		// A bounded ANALYZE at the end, as the seeder's.
		set := []string{`PRAGMA synchronous = OFF`, `PRAGMA cache_size = -1048576`,
			fmt.Sprintf(`PRAGMA threads = %d`, runtime.GOMAXPROCS(0)), `PRAGMA analysis_limit = 1000`}
		// What OpenSQLite set.
		undo = []string{`PRAGMA synchronous = FULL`, fmt.Sprintf(`PRAGMA cache_size = -%d`, sqliteWriteCacheKiB), `PRAGMA threads = 0`, `PRAGMA analysis_limit = 0`}
		for _, q := range set {
			if _, err := db.write.ExecContext(ctx, q); err != nil {
				restore()
				return nil, fmt.Errorf("%s: %w", q, db.mapErr(err))
			}
		}
	}
	if _, err := db.write.ExecContext(ctx, `DROP INDEX IF EXISTS timelines_article_idx`); err != nil {
		restore()
		return nil, db.mapErr(err)
	}
	return restore, nil
}
