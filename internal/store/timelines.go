package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// Home timelines (migration 0012, docs/stage7.md): the feed fanned out on
// write for authors with at most FeedOptions.MaxFollowers followers, merged
// on read with the articles of the "celebrities" a user follows.
//
// What a timeline holds is a function of the tables: for a user whose
// timeline_state row exists, (user, article) is a row iff the user follows
// the article's author, the author is no celebrity, and the article's id
// is above the user's horizon. Every job reconciles the rows of one author
// with that rule, reading the tables as they are when it runs, and the jobs
// of one author run one at a time (lockAuthor): whichever job runs last
// after a change sees it, so the result does not depend on the order in
// which jobs run or how often. The feed counts follow the same rule through
// follows.feed_counted.

var _ conduit.JobStore = (*DB)(nil)

// chunk bounds the ids of one IN list.
const chunk = 500

// lockAuthor makes the jobs of one author run one at a time (on
// PostgreSQL, a row lock held until the transaction ends; SQLite runs one
// write transaction at a time anyway) and says whether the author is a
// celebrity.
func (db *DB) lockAuthor(ctx context.Context, tx *sqlTx, authorID int64) (bool, error) {
	if _, err := tx.exec(ctx, `INSERT INTO fanout_authors (user_id) VALUES (?) ON CONFLICT DO NOTHING`, authorID); err != nil {
		return false, err
	}
	var celebrity int
	err := tx.queryRow(ctx, `SELECT celebrity FROM fanout_authors WHERE user_id = ?`+db.forUpdate(), authorID).Scan(&celebrity)
	return celebrity == 1, err
}

// forUpdate is the row-locking clause of the dialect (none on SQLite,
// whose single writer serializes every write transaction).
func (db *DB) forUpdate() string {
	if db.d.name == "postgres" {
		return " FOR UPDATE"
	}
	return ""
}

// becameCelebrity says whether the author is (or now becomes) a celebrity: one
// with more followers than opts.MaxFollowers. Becoming one is for good
// (no flapping around the threshold): the author's articles leave every
// timeline and feed counts stop counting them, as they are merged on read
// from now on. The caller holds the author's lock.
func (db *DB) becameCelebrity(ctx context.Context, tx *sqlTx, authorID int64, already bool, opts conduit.FeedOptions) (bool, error) {
	if already {
		return true, nil
	}
	var n int
	if err := tx.queryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM follows WHERE followee_id = ? LIMIT ?) x`,
		authorID, opts.MaxFollowers+1).Scan(&n); err != nil {
		return false, err
	}
	if n <= opts.MaxFollowers {
		return false, nil
	}
	if _, err := tx.exec(ctx, `UPDATE fanout_authors SET celebrity = 1 WHERE user_id = ?`, authorID); err != nil {
		return false, err
	}
	if err := deleteRows(ctx, tx, `DELETE FROM timelines WHERE article_id IN (SELECT id FROM articles WHERE author_id = ?) RETURNING user_id`, authorID); err != nil {
		return false, err
	}
	return true, db.syncCounts(ctx, tx, authorID, 0)
}

// syncCounts sets feed_counted of every follow of the author by a user
// with a timeline to target, moving those users' feed counts by the
// difference. The follows rows are locked first (PostgreSQL), so a follow
// made meanwhile is either updated with its user's count or left to its own
// job, and an unfollow subtracts what was counted.
func (db *DB) syncCounts(ctx context.Context, tx *sqlTx, authorID int64, target int64) error {
	lock := ""
	if db.d.name == "postgres" {
		lock = " FOR UPDATE OF f"
	}
	rs, err := tx.tx.QueryContext(ctx, tx.d.rebind(`
		SELECT f.follower_id, f.feed_counted FROM follows f
		WHERE f.followee_id = ? AND f.feed_counted <> ?
		  AND EXISTS (SELECT 1 FROM timeline_state s WHERE s.user_id = f.follower_id)
		ORDER BY f.follower_id`+lock), authorID, target)
	if err != nil {
		return err
	}
	byDelta := map[int64][]int64{}
	for rs.Next() {
		var user, counted int64
		if err := rs.Scan(&user, &counted); err != nil {
			rs.Close()
			return err
		}
		byDelta[target-counted] = append(byDelta[target-counted], user)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	for delta, users := range byDelta {
		for part := range slices.Chunk(users, chunk) {
			args := append([]any{target, authorID}, anys(part)...)
			if _, err := tx.exec(ctx, `UPDATE follows SET feed_counted = ? WHERE followee_id = ? AND follower_id IN (`+placeholders(len(part))+`)`, args...); err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `UPDATE timeline_state SET feed_count = feed_count + ? WHERE user_id IN (`+placeholders(len(part))+`)`,
				append([]any{delta}, anys(part)...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// articlesCount is the author's number of articles.
func articlesCount(ctx context.Context, tx *sqlTx, authorID int64) (int64, error) {
	var n int64
	err := tx.queryRow(ctx, `SELECT articles_count FROM users WHERE id = ?`, authorID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// FanOut implements conduit.JobStore: the article joins the timelines of
// its author's followers, unless the author is a celebrity.
func (db *DB) FanOut(ctx context.Context, articleID, authorID int64, opts conduit.FeedOptions) error {
	var grown []int64
	err := db.tx(ctx, func(tx *sqlTx) error {
		celebrity, err := db.lockAuthor(ctx, tx, authorID)
		if err != nil {
			return err
		}
		if celebrity, err = db.becameCelebrity(ctx, tx, authorID, celebrity, opts); err != nil || celebrity {
			return err
		}
		n, err := articlesCount(ctx, tx, authorID)
		if err != nil {
			return err
		}
		if db.d.name == "postgres" {
			grown, err = fanOutPostgres(ctx, tx, articleID, authorID, n, opts)
			return err
		}
		if err := db.syncCounts(ctx, tx, authorID, n); err != nil {
			return err
		}
		// The article may be gone already; then its delete job has
		// nothing to undo here either.
		rs, err := tx.tx.QueryContext(ctx, tx.d.rebind(`
			INSERT INTO timelines (user_id, article_id, author_id)
			SELECT s.user_id, a.id, a.author_id
			FROM articles a
			JOIN follows f ON f.followee_id = a.author_id
			JOIN timeline_state s ON s.user_id = f.follower_id
			WHERE a.id = ? AND s.horizon < a.id
			ON CONFLICT DO NOTHING
			RETURNING user_id`), articleID)
		if err != nil {
			return err
		}
		users, err := scanIDs(rs)
		if err != nil {
			return err
		}
		grown, err = db.grow(ctx, tx, users, +1, opts)
		return err
	})
	if err != nil {
		return err
	}
	return db.trimAll(ctx, grown, opts)
}

// fanOutPostgres is FanOut's work after the author's lock on PostgreSQL:
// what syncCounts, the insert and grow do, in one statement. Separately
// they updated each follower's timeline_state row twice (its feed count,
// then its size) after locking and updating its follows row, in a dozen
// round trips for 1,000 followers; each row update is a new row version
// there, so the fan-out ran at a thirtieth of SQLite's rate. Here each
// row is updated once. The follows rows are locked first, as in
// syncCounts, so that each delta is taken from the value it replaces. It
// returns the followers whose timelines are now over their cap.
func fanOutPostgres(ctx context.Context, tx *sqlTx, articleID, authorID, count int64, opts conduit.FeedOptions) ([]int64, error) {
	limit := opts.TimelineCap + max(opts.TimelineCap/10, 10)
	rs, err := tx.tx.QueryContext(ctx, `
		WITH old AS (
			SELECT f.follower_id, f.feed_counted FROM follows f
			WHERE f.followee_id = $1 AND f.feed_counted <> $2
			  AND EXISTS (SELECT 1 FROM timeline_state s WHERE s.user_id = f.follower_id)
			ORDER BY f.follower_id
			FOR UPDATE OF f
		), counted AS (
			UPDATE follows f SET feed_counted = $2 FROM old
			WHERE f.followee_id = $1 AND f.follower_id = old.follower_id
			RETURNING f.follower_id AS user_id, $2 - old.feed_counted AS delta
		), added AS (
			-- The article may be gone already; then its delete job has
			-- nothing to undo here either.
			INSERT INTO timelines (user_id, article_id, author_id)
			SELECT s.user_id, a.id, a.author_id
			FROM articles a
			JOIN follows f ON f.followee_id = a.author_id
			JOIN timeline_state s ON s.user_id = f.follower_id
			WHERE a.id = $3 AND s.horizon < a.id
			ON CONFLICT DO NOTHING
			RETURNING user_id
		)
		UPDATE timeline_state s
		SET feed_count = s.feed_count + x.delta, size = s.size + x.added
		FROM (
			SELECT coalesce(c.user_id, a.user_id) AS user_id, coalesce(c.delta, 0) AS delta,
			       CASE WHEN a.user_id IS NULL THEN 0 ELSE 1 END AS added
			FROM counted c FULL JOIN added a ON a.user_id = c.user_id
			ORDER BY 1
		) x
		WHERE s.user_id = x.user_id
		RETURNING s.user_id, s.size, x.added`, authorID, count, articleID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var over []int64
	for rs.Next() {
		var user int64
		var size, added int
		if err := rs.Scan(&user, &size, &added); err != nil {
			return nil, err
		}
		if added == 1 && size > limit {
			over = append(over, user)
		}
	}
	return over, rs.Err()
}

// grow moves the size of the users' timelines by delta and returns those
// now over their cap (plus a tenth, so that trimming is occasional).
func (db *DB) grow(ctx context.Context, tx *sqlTx, users []int64, delta int, opts conduit.FeedOptions) ([]int64, error) {
	limit := opts.TimelineCap + max(opts.TimelineCap/10, 10)
	var over []int64
	slices.Sort(users)
	for part := range slices.Chunk(users, chunk) {
		rs, err := tx.tx.QueryContext(ctx, tx.d.rebind(`
			UPDATE timeline_state SET size = size + ? WHERE user_id IN (`+placeholders(len(part))+`)
			RETURNING user_id, size`), append([]any{delta}, anys(part)...)...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var user int64
			var size int
			if err := rs.Scan(&user, &size); err != nil {
				rs.Close()
				return nil, err
			}
			if size > limit {
				over = append(over, user)
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return over, nil
}

// trimAll trims the timelines of users, each in a transaction of its own.
func (db *DB) trimAll(ctx context.Context, users []int64, opts conduit.FeedOptions) error {
	for _, u := range users {
		if err := db.tx(ctx, func(tx *sqlTx) error { return trim(ctx, tx, u, opts.TimelineCap) }); err != nil {
			return err
		}
	}
	return nil
}

// trim keeps the newest cap rows of a timeline and raises its horizon to
// match: the timeline stays exact above the horizon. It needs no author
// lock: it only drops rows at or below the new horizon, which no reader
// uses, and a job that adds such a row meanwhile adds one that is ignored.
func trim(ctx context.Context, tx *sqlTx, userID int64, cap int) error {
	var lowest int64
	err := tx.queryRow(ctx, `SELECT article_id FROM timelines WHERE user_id = ? ORDER BY article_id DESC LIMIT 1 OFFSET ?`,
		userID, cap-1).Scan(&lowest)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not over the cap after all
	}
	if err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `DELETE FROM timelines WHERE user_id = ? AND article_id < ?`, userID, lowest); err != nil {
		return err
	}
	_, err = tx.exec(ctx, `
		UPDATE timeline_state SET size = ?, horizon = CASE WHEN horizon < ? THEN ? ELSE horizon END
		WHERE user_id = ?`, cap, lowest-1, lowest-1, userID)
	return err
}

// Unpublish implements conduit.JobStore: the deleted article leaves every
// timeline, and feed counts follow the author's new count.
func (db *DB) Unpublish(ctx context.Context, articleID, authorID int64, opts conduit.FeedOptions) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		celebrity, err := db.lockAuthor(ctx, tx, authorID)
		if err != nil {
			return err
		}
		rs, err := tx.tx.QueryContext(ctx, tx.d.rebind(`DELETE FROM timelines WHERE article_id = ? RETURNING user_id`), articleID)
		if err != nil {
			return err
		}
		users, err := scanIDs(rs)
		if err != nil {
			return err
		}
		if _, err := db.grow(ctx, tx, users, -1, opts); err != nil {
			return err
		}
		var n int64
		if !celebrity {
			if n, err = articlesCount(ctx, tx, authorID); err != nil {
				return err
			}
		}
		return db.syncCounts(ctx, tx, authorID, n)
	})
}

// SyncFollow implements conduit.JobStore: the follower's timeline gets the
// followee's newest articles if the follow exists now (and the followee is
// no celebrity), and loses them if not.
func (db *DB) SyncFollow(ctx context.Context, followerID, followeeID int64, opts conduit.FeedOptions) error {
	var over bool
	err := db.tx(ctx, func(tx *sqlTx) (err error) {
		celebrity, err := db.lockAuthor(ctx, tx, followeeID)
		if err != nil {
			return err
		}
		// The pending mark is read before the follow and cleared at the
		// end unless a later change bumped it: that change's own job
		// clears it.
		var version int64
		err = tx.queryRow(ctx, `SELECT version FROM timeline_pending WHERE user_id = ? AND followee_id = ?`,
			followerID, followeeID).Scan(&version)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		defer func() {
			if err == nil && version != 0 {
				_, err = tx.exec(ctx, `DELETE FROM timeline_pending WHERE user_id = ? AND followee_id = ? AND version = ?`,
					followerID, followeeID, version)
			}
		}()
		if celebrity, err = db.becameCelebrity(ctx, tx, followeeID, celebrity, opts); err != nil {
			return err
		}
		var horizon int64
		err = tx.queryRow(ctx, `SELECT horizon FROM timeline_state WHERE user_id = ?`, followerID).Scan(&horizon)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // no timeline: built from the follows when it is
		}
		if err != nil {
			return err
		}
		var counted int64
		err = tx.queryRow(ctx, `SELECT feed_counted FROM follows WHERE follower_id = ? AND followee_id = ?`+db.forUpdate(),
			followerID, followeeID).Scan(&counted)
		following := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if !following || celebrity {
			// Not followed (the unfollow subtracted what was counted), or
			// merged on read: no rows, nothing counted.
			if following && counted != 0 {
				if err := setCounted(ctx, tx, followerID, followeeID, counted, 0); err != nil {
					return err
				}
			}
			res, err := tx.exec(ctx, `DELETE FROM timelines WHERE user_id = ? AND author_id = ?`, followerID, followeeID)
			if err != nil {
				return err
			}
			gone, err := res.RowsAffected()
			if err != nil || gone == 0 {
				return err
			}
			_, err = tx.exec(ctx, `UPDATE timeline_state SET size = size - ? WHERE user_id = ?`, gone, followerID)
			return err
		}
		n, err := articlesCount(ctx, tx, followeeID)
		if err != nil {
			return err
		}
		if err := setCounted(ctx, tx, followerID, followeeID, counted, n); err != nil {
			return err
		}
		over, err = backfill(ctx, tx, followerID, followeeID, horizon, opts)
		return err
	})
	if err != nil || !over {
		return err
	}
	return db.trimAll(ctx, []int64{followerID}, opts)
}

// setCounted moves one follow's feed_counted from old to target and the
// follower's feed count with it.
func setCounted(ctx context.Context, tx *sqlTx, followerID, followeeID, old, target int64) error {
	if old == target {
		return nil
	}
	if _, err := tx.exec(ctx, `UPDATE follows SET feed_counted = ? WHERE follower_id = ? AND followee_id = ?`,
		target, followerID, followeeID); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `UPDATE timeline_state SET feed_count = feed_count + ? WHERE user_id = ?`, target-old, followerID)
	return err
}

// backfill puts the author's newest articles above the user's horizon into
// the user's timeline: at most the cap of them. When the author has more
// there, the horizon rises above the oldest left out (the timeline must
// hold every article above it). It reports whether the timeline is now
// over its cap.
func backfill(ctx context.Context, tx *sqlTx, userID, authorID, horizon int64, opts conduit.FeedOptions) (bool, error) {
	cap := opts.TimelineCap
	res, err := tx.exec(ctx, `
		INSERT INTO timelines (user_id, article_id, author_id)
		SELECT ?, id, author_id FROM articles
		WHERE author_id = ? AND id > ?
		ORDER BY id DESC LIMIT ?
		ON CONFLICT DO NOTHING`, userID, authorID, horizon, cap)
	if err != nil {
		return false, err
	}
	added, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	var left int64
	err = tx.queryRow(ctx, `SELECT id FROM articles WHERE author_id = ? AND id > ? ORDER BY id DESC LIMIT 1 OFFSET ?`,
		authorID, horizon, cap).Scan(&left)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, err
	default:
		// Articles up to left were not added: nothing at or below it may
		// be read from the timeline any more.
		res, err := tx.exec(ctx, `DELETE FROM timelines WHERE user_id = ? AND article_id <= ?`, userID, left)
		if err != nil {
			return false, err
		}
		gone, err := res.RowsAffected()
		if err != nil {
			return false, err
		}
		added -= gone
		if _, err := tx.exec(ctx, `UPDATE timeline_state SET horizon = ? WHERE user_id = ? AND horizon < ?`, left, userID, left); err != nil {
			return false, err
		}
	}
	var size int
	err = tx.queryRow(ctx, `UPDATE timeline_state SET size = size + ? WHERE user_id = ? RETURNING size`, added, userID).Scan(&size)
	return size > cap+max(cap/10, 10), err
}

// countFollowsSQL sets what each follow of the followers with ids from the
// first argument to the second counts into its follower's feed count: the
// followee's articles, unless they are merged on read (a celebrity's).
// Builds of one timeline and bulk builds of a range use it alike.
const countFollowsSQL = `
	UPDATE follows SET feed_counted = coalesce((
		SELECT u.articles_count FROM users u
		WHERE u.id = follows.followee_id
		  AND NOT EXISTS (SELECT 1 FROM fanout_authors c WHERE c.user_id = u.id AND c.celebrity = 1)
	), 0)
	WHERE follower_id BETWEEN ? AND ?`

// BuildTimeline implements conduit.JobStore: the user's timeline, built
// from the follows (users from before timelines, or any user again). It
// runs in two transactions: the first creates the user's state row (not
// ready: feeds are still read from the follows), after which every job of
// every author counts the user in; the second computes everything from the
// tables, holding the locks of the user's authors against their jobs, and
// marks the timeline ready.
func (db *DB) BuildTimeline(ctx context.Context, userID int64, opts conduit.FeedOptions) error {
	err := db.tx(ctx, func(tx *sqlTx) error {
		_, err := tx.exec(ctx, `INSERT INTO timeline_state (user_id) SELECT id FROM users WHERE id = ? ON CONFLICT DO NOTHING`, userID)
		return err
	})
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *sqlTx) error {
		if db.d.name == "postgres" {
			// Shared locks on the authors, in order (no deadlock between
			// builds; an author's jobs wait for the build, and it for them).
			if _, err := tx.exec(ctx, `
				INSERT INTO fanout_authors (user_id) SELECT followee_id FROM follows WHERE follower_id = ?
				ON CONFLICT DO NOTHING`, userID); err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `
				SELECT user_id FROM fanout_authors
				WHERE user_id IN (SELECT followee_id FROM follows WHERE follower_id = ?)
				ORDER BY user_id FOR SHARE`, userID); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, countFollowsSQL, userID, userID); err != nil {
			return err
		}
		var count int64
		if err := tx.queryRow(ctx, `SELECT coalesce(sum(feed_counted), 0) FROM follows WHERE follower_id = ?`, userID).Scan(&count); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM timelines WHERE user_id = ?`, userID); err != nil {
			return err
		}
		// The newest cap+1 articles of the non-celebrity followees: the
		// last one, if there, is the horizon (and is not kept).
		newest := `
			SELECT a.id, a.author_id FROM follows f
			JOIN articles a ON a.author_id = f.followee_id
			WHERE f.follower_id = ?
			  AND NOT EXISTS (SELECT 1 FROM fanout_authors c WHERE c.user_id = f.followee_id AND c.celebrity = 1)
			ORDER BY a.id DESC LIMIT ?`
		args := []any{userID, opts.TimelineCap + 1}
		if db.d.name == "postgres" {
			// One bounded range of articles_author_idx per followee.
			newest = `
				SELECT x.id, x.author_id FROM follows f
				CROSS JOIN LATERAL (
					SELECT a.id, a.author_id FROM articles a WHERE a.author_id = f.followee_id
					ORDER BY a.id DESC LIMIT ?
				) x
				WHERE f.follower_id = ?
				  AND NOT EXISTS (SELECT 1 FROM fanout_authors c WHERE c.user_id = f.followee_id AND c.celebrity = 1)
				ORDER BY x.id DESC LIMIT ?`
			args = []any{opts.TimelineCap + 1, userID, opts.TimelineCap + 1}
		}
		rs, err := tx.tx.QueryContext(ctx, tx.d.rebind(newest), args...)
		if err != nil {
			return err
		}
		type row struct{ id, author int64 }
		var rows []row
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.id, &r.author); err != nil {
				rs.Close()
				return err
			}
			rows = append(rows, r)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		var horizon int64
		if len(rows) > opts.TimelineCap {
			horizon = rows[opts.TimelineCap].id
			rows = rows[:opts.TimelineCap]
		}
		for part := range slices.Chunk(rows, chunk) {
			args := make([]any, 0, 3*len(part))
			for _, r := range part {
				args = append(args, userID, r.id, r.author)
			}
			if _, err := tx.exec(ctx, `INSERT INTO timelines (user_id, article_id, author_id) VALUES `+
				strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(part)), ", "), args...); err != nil {
				return err
			}
		}
		_, err = tx.exec(ctx, `UPDATE timeline_state SET ready = 1, horizon = ?, feed_count = ?, size = ? WHERE user_id = ?`,
			horizon, count, len(rows), userID)
		return err
	})
}

// unfollow deletes a follow within tx, taking what it counted out of the
// follower's feed count. It reports whether there was a follow.
func unfollow(ctx context.Context, tx *sqlTx, followerID, followeeID int64) (bool, error) {
	var counted int64
	err := tx.queryRow(ctx, `DELETE FROM follows WHERE follower_id = ? AND followee_id = ? RETURNING feed_counted`,
		followerID, followeeID).Scan(&counted)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil || counted == 0 {
		return err == nil, err
	}
	_, err = tx.exec(ctx, `UPDATE timeline_state SET feed_count = feed_count - ? WHERE user_id = ?`, counted, followerID)
	return true, err
}

// markPending notes, in a follow's or unfollow's transaction, that the
// follower's timeline is behind until the pair's job has run.
func markPending(ctx context.Context, tx *sqlTx, followerID, followeeID int64) error {
	_, err := tx.exec(ctx, `
		INSERT INTO timeline_pending (user_id, followee_id, version) VALUES (?, ?, 1)
		ON CONFLICT (user_id, followee_id) DO UPDATE SET version = timeline_pending.version + 1`,
		followerID, followeeID)
	return err
}

// newTimeline gives a new user an empty, ready timeline.
func newTimeline(ctx context.Context, tx *sqlTx, userID int64) error {
	_, err := tx.exec(ctx, `INSERT INTO timeline_state (user_id, ready) VALUES (?, 1)`, userID)
	return err
}

// UsersWithoutTimeline lists up to limit users above afterID (in id order)
// whose timeline is not built, for enqueuing timeline.build jobs.
func (db *DB) UsersWithoutTimeline(ctx context.Context, afterID int64, limit int) ([]int64, error) {
	return db.queryIDs(ctx, `
		SELECT u.id FROM users u
		WHERE u.id > ? AND NOT EXISTS (SELECT 1 FROM timeline_state s WHERE s.user_id = u.id AND s.ready = 1)
		ORDER BY u.id LIMIT ?`, afterID, limit)
}

// queryIDs runs a query of one integer column on the read pool.
func (db *DB) queryIDs(ctx context.Context, q string, args ...any) ([]int64, error) {
	rs, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.cancel()
	ids, err := scanIDs(rs.Rows)
	return ids, db.mapErr(err)
}

// timelineFeed reads a feed from the viewer's timeline merged with the
// articles of the celebrities the viewer follows (and of the followees
// whose follow's job has not run: see timelineState): its cost depends on
// the page and the authors merged, not on how many accounts the viewer
// follows. ok is false when the timeline cannot answer (not built, too
// many follows waiting for their jobs, or the page reaches below its
// horizon): the caller reads the feed from the follows instead. Three statements per page: the state with the
// celebrities followed, the page (timeline and celebrities merged in SQL),
// and the tags.
func (db *DB) timelineFeed(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (page conduit.ArticlePage, ok bool, err error) {
	st, err := db.timelineState(ctx, viewerID)
	if err != nil || !st.ready {
		return page, false, err // not built, or the viewer's own follows not synced yet
	}
	count := st.count
	for _, c := range st.onRead {
		count += c.articles
	}
	need := f.Offset + f.Limit + 1
	var kept []int64 // the kept celebrities' newest ids (celebCache)
	if len(st.celebs) > 0 {
		entries, all, err := db.celebEntries(ctx, st.celebs)
		if err != nil || !all {
			return page, false, err
		}
		for i, e := range entries {
			count += e.count
			if ids, enough := e.newest(f.Before, need); enough {
				kept = append(kept, ids...)
			} else {
				// Deeper than the entry: read from the articles table.
				st.onRead = append(st.onRead, celeb{id: st.celebs[i].id, articles: e.count})
			}
		}
		slices.SortFunc(kept, func(a, b int64) int { return cmp.Compare(b, a) })
		kept = kept[:min(len(kept), need)]
	}
	if count <= int64(f.Offset) {
		return conduit.ArticlePage{Count: int(count), Articles: []conduit.Article{}}, true, nil
	}
	ids, args, err := db.mergedIDs(ctx, viewerID, st, f.Before, need, kept)
	if err != nil {
		return page, false, err
	}
	args = append([]any{viewerID, viewerID}, args...)
	args = append(args, f.Limit+1, f.Offset)
	articles, err := db.articlesOf(ctx, fmt.Sprintf(pageSelect, ids+` LIMIT ? OFFSET ?`), args...)
	if err != nil {
		return page, false, err
	}
	// The timeline holds every article above the horizon: the page is
	// right if its last article (the one after it, which says whether more
	// follow) is above it, or if nothing was ever trimmed.
	if st.horizon > 0 && (len(articles) <= f.Limit || articles[f.Limit].ID <= st.horizon) {
		return page, false, nil
	}
	page = conduit.ArticlePage{Count: int(count), Articles: articles}
	if len(articles) > f.Limit {
		page.Articles = articles[:f.Limit]
		page.Next = page.Articles[f.Limit-1].ID
	}
	return page, true, db.mapErr(db.loadTags(ctx, page.Articles))
}

type celeb struct{ id, articles int64 }

// timelineState is what a feed page needs before its page query.
type timelineState struct {
	ready          bool // built, and not too far behind the viewer's follows
	horizon, count int64
	// onRead are the authors whose articles are merged into the page from
	// the articles table: the celebrities the viewer follows, and the
	// followees whose follow's job has not run yet.
	onRead []celeb
	// behind are the authors of the viewer's follows and unfollows whose
	// jobs have not run yet: the timeline's rows of theirs are left out.
	behind []int64
	// celebs are the celebrities the viewer follows when their articles
	// come from db.celebs (SQLite), with their versions; onRead has them
	// otherwise.
	celebs []celebRef
}

// maxBehind bounds the follows and unfollows whose jobs have not run that
// a feed page reads around; beyond it the feed is read from the follows.
const maxBehind = 50

// timelineState reads the viewer's timeline state, the celebrities the
// viewer follows with their article counts, and the viewer's follows and
// unfollows whose jobs have not run yet, in one statement: a row of kind 0
// for the state (none if the timeline was never built), one of kind 1 per
// celebrity, one of kind 2 per pending follow. On PostgreSQL the
// celebrities cost one follows probe each (a bounded, site-wide set),
// whatever the viewer follows (not an outer join of the state with the
// celebrities: PostgreSQL then hashes every follows row for the probe); on
// SQLite see stateSQLite.
//
// A follow's job puts the followee's articles into the timeline, an
// unfollow's takes them out, and until it has run the timeline is wrong
// about that one author (the follows table is right: the write changed
// it). So the page leaves that author's timeline rows out and, if the
// follow exists, merges the author's articles in from the articles table
// as it does a celebrity's; the count takes what the follow counted out
// of the viewer's feed count (what its rows there stand for) and adds the
// author's articles. A user who just followed someone then keeps the
// cheap page instead of reading the feed from every follow until the job
// has run, which under load is most of the time for an active user.
func (db *DB) timelineState(ctx context.Context, viewerID int64) (timelineState, error) {
	var st timelineState
	q := stateSQL
	if db.celebs != nil {
		q = stateSQLite
	}
	rs, err := db.query(ctx, q, viewerID, viewerID, viewerID)
	if err != nil {
		return st, db.mapErr(err)
	}
	defer rs.Close()
	built, tooFar := false, false
	for rs.Next() {
		var kind, flag, a, b, counted, celebrity int64
		if err := rs.Scan(&kind, &flag, &a, &b, &counted, &celebrity); err != nil {
			return st, db.mapErr(err)
		}
		switch kind {
		case 0:
			built, st.horizon, st.count = flag == 1, a, b
		case 1:
			st.onRead = append(st.onRead, celeb{id: a, articles: b})
		case 3:
			st.celebs = append(st.celebs, celebRef{id: a, version: b})
		default:
			// A celebrity's articles are never in timelines and are
			// merged already when followed (kind 1); a celebrity whose
			// status is changing is left to the slow path.
			tooFar = tooFar || celebrity == 1 || len(st.behind) == maxBehind
			st.behind = append(st.behind, a)
			st.count -= counted
			if flag == 1 {
				st.onRead = append(st.onRead, celeb{id: a, articles: b})
			}
		}
	}
	st.ready = built && !tooFar
	return st, db.mapErr(rs.Err())
}

// stateSQL is timelineState's statement (PostgreSQL): the state row, the
// celebrities the viewer follows (one follows probe per celebrity), the
// pending follows.
const stateSQL = `
	SELECT 0, s.ready, s.horizon, s.feed_count, 0, 0
	FROM timeline_state s WHERE s.user_id = ?
	UNION ALL
	SELECT 1, 0, c.user_id, u.articles_count, 0, 0 FROM fanout_authors c
	JOIN users u ON u.id = c.user_id
	WHERE c.celebrity = 1
	  AND EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = ? AND f.followee_id = c.user_id)
	UNION ALL
	` + statePendingSQL

// statePendingSQL is the pending follows' part of the state statements.
const statePendingSQL = `SELECT 2, CASE WHEN f.follower_id IS NULL THEN 0 ELSE 1 END, p.followee_id, u.articles_count,
	       coalesce(f.feed_counted, 0),
	       CASE WHEN EXISTS (SELECT 1 FROM fanout_authors c WHERE c.user_id = p.followee_id AND c.celebrity = 1) THEN 1 ELSE 0 END
	FROM timeline_pending p
	JOIN users u ON u.id = p.followee_id
	LEFT JOIN follows f ON f.follower_id = p.user_id AND f.followee_id = p.followee_id
	WHERE p.user_id = ?`

// stateSQLite is timelineState's statement on SQLite, where the
// celebrities come as rows of kind 3 with their versions (for db.celebs)
// and without their counts (kept there too). A probe of
// the follows primary key (a two-column key of a WITHOUT ROWID table)
// costs as much as walking ~3.5 of the viewer's follows and probing
// fanout_authors by rowid for each: one probe per celebrity (~100 at the
// full scale) was half of a feed page's CPU. So the celebrities followed
// are found from the viewer's follows when they are fewer than
// stateByFollows, from the celebrities otherwise: the branch whose
// condition holds runs, the other stops at its uncorrelated EXISTS
// (evaluated once, at most stateByFollows index entries). Either way the
// cost is bounded whatever the viewer follows.
var stateSQLite = strings.NewReplacer("?n", fmt.Sprint(stateByFollows-1)).Replace(`
	SELECT 0, s.ready, s.horizon, s.feed_count, 0, 0
	FROM timeline_state s WHERE s.user_id = ?1
	UNION ALL
	SELECT 3, 0, c.user_id, c.version, 0, 0
	FROM follows f CROSS JOIN fanout_authors c
	WHERE f.follower_id = ?2 AND c.user_id = f.followee_id AND c.celebrity = 1
	  AND NOT EXISTS (SELECT 1 FROM follows WHERE follower_id = ?2 LIMIT 1 OFFSET ?n)
	UNION ALL
	SELECT 3, 0, c.user_id, c.version, 0, 0 FROM fanout_authors c
	WHERE c.celebrity = 1
	  AND EXISTS (SELECT 1 FROM follows WHERE follower_id = ?2 LIMIT 1 OFFSET ?n)
	  AND EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = ?2 AND f.followee_id = c.user_id)
	UNION ALL
	` + strings.Replace(statePendingSQL, "p.user_id = ?", "p.user_id = ?3", 1))

// stateByFollows is the number of follows from which stateSQLite finds a
// viewer's celebrities by probing each celebrity instead (see there).
const stateByFollows = 256

// celebBranches is how many celebrities' branches one page statement
// holds (SQLite allows 500 terms in a compound SELECT).
const celebBranches = 100

// mergedIDs returns a query selecting "id", newest first and without
// duplicates, over the viewer's timeline above its horizon (less the rows
// of the authors whose follow's job has not run) merged with the newest
// need articles of each author read on read (st.onRead), and its
// arguments. Each branch reads at most need ids from its index. Authors
// beyond celebBranches are read first, in chunks, and join as a list of
// ids. kept, the newest ids of the celebrities db.celebs answered for,
// join as a list too (a JSON array: one argument, so the statement's text,
// and the prepared statement, is the same for every viewer without other
// authors to merge).
func (db *DB) mergedIDs(ctx context.Context, viewerID int64, st timelineState, before int64, need int, kept []int64) (string, []any, error) {
	// branch reads the newest need ids of one source below the cursor.
	branch := func(q, col string, args ...any) (string, []any) {
		if before > 0 {
			q, args = q+" AND "+col+" < ?", append(args, before)
		}
		return `SELECT id FROM (` + q + ` ORDER BY ` + col + ` DESC LIMIT ?) b`, append(args, need)
	}
	timeline, targs := `SELECT article_id AS id FROM timelines WHERE user_id = ? AND article_id > ?`, []any{viewerID, st.horizon}
	if len(st.behind) > 0 {
		timeline += ` AND author_id NOT IN (` + placeholders(len(st.behind)) + `)`
		targs = append(targs, anys(st.behind)...)
	}
	q, args := branch(timeline, "article_id", targs...)
	parts := []string{q}
	celebs := st.onRead
	var rest []int64
	for len(celebs) > celebBranches {
		var qs []string
		var as []any
		for _, c := range celebs[len(celebs)-celebBranches:] {
			q, a := branch(`SELECT id FROM articles WHERE author_id = ?`, "id", c.id)
			qs, as = append(qs, q), append(as, a...)
		}
		celebs = celebs[:len(celebs)-celebBranches]
		ids, err := db.queryIDs(ctx, strings.Join(qs, " UNION ALL "), as...)
		if err != nil {
			return "", nil, err
		}
		rest = append(rest, ids...)
		slices.SortFunc(rest, func(a, b int64) int { return cmp.Compare(b, a) })
		rest = slices.Compact(rest)
		rest = rest[:min(len(rest), need)]
	}
	for _, c := range celebs {
		q, a := branch(`SELECT id FROM articles WHERE author_id = ?`, "id", c.id)
		parts, args = append(parts, q), append(args, a...)
	}
	if len(rest) > 0 {
		parts = append(parts, `SELECT id FROM articles WHERE id IN (`+placeholders(len(rest))+`)`)
		args = append(args, anys(rest)...)
	}
	if len(kept) > 0 {
		parts = append(parts, `SELECT value FROM json_each(?)`)
		args = append(args, jsonIDs(kept))
	}
	return strings.Join(parts, "\n\t\tUNION ") + " ORDER BY id DESC", args, nil
}

// jsonIDs is ids as a JSON array.
func jsonIDs(ids []int64) string {
	b := make([]byte, 0, 2+8*len(ids))
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// FeedOnRead is the feed read from the follows only (fan-out on read), the
// reference a timeline must agree with.
func (db *DB) FeedOnRead(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	return db.feedOnRead(ctx, viewerID, f)
}

// TimelineFeed is the feed read from the timeline only, ok false when it
// cannot answer (for tests and checks).
func (db *DB) TimelineFeed(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, bool, error) {
	return db.timelineFeed(ctx, viewerID, f)
}

// deleteRows runs a DELETE … RETURNING user_id and ignores the ids.
func deleteRows(ctx context.Context, tx *sqlTx, q string, args ...any) error {
	rs, err := tx.tx.QueryContext(ctx, tx.d.rebind(q), args...)
	if err != nil {
		return err
	}
	_, err = scanIDs(rs)
	return err
}

// scanIDs reads a single integer column and closes rs.
func scanIDs(rs *sql.Rows) ([]int64, error) {
	defer rs.Close()
	var ids []int64
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rs.Err()
}

func anys[T any](v []T) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// ignoreNotFound turns ErrNotFound into nil.
func ignoreNotFound(err error) error {
	if errors.Is(err, conduit.ErrNotFound) {
		return nil
	}
	return err
}

// Feed returns the newest articles of the authors viewerID follows: from
// the viewer's timeline when it can answer (see timelineFeed), else read
// from the follows (feedOnRead). Both give the same page and count.
func (db *DB) Feed(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	page, ok, err := db.timelineFeed(ctx, viewerID, f)
	if err != nil || ok {
		return page, err
	}
	return db.feedOnRead(ctx, viewerID, f)
}
