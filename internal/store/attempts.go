package store

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

var _ conduit.AttemptCounter = (*DB)(nil)

// Attempts implements conduit.AttemptCounter: the windows of keys still
// open at now. Keys without one are absent from the map.
func (db *DB) Attempts(ctx context.Context, keys []string, now time.Time) (map[string]conduit.AttemptWindow, error) {
	args := make([]any, 0, len(keys)+1)
	for _, k := range keys {
		args = append(args, k)
	}
	// On the primary: counters are written outside transactions, so no
	// read-your-writes position would keep a lagging replica away.
	rs, err := db.primaryQuery(ctx, `
		SELECT attempt_key, count, reset_at FROM auth_attempts
		WHERE attempt_key IN (`+placeholders(len(keys))+`) AND reset_at > ?`,
		append(args, now.UnixMilli())...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return db.scanAttempts(rs)
}

// AddAttempts implements conduit.AttemptCounter in one statement: a key
// whose window is over (or that has none) starts a new one at now; the
// count never goes below zero. Keys are written in sorted order, so two
// statements on PostgreSQL lock shared rows in the same order and cannot
// deadlock. It runs outside any transaction of the request: attempts are
// not part of the request's write and must count whatever becomes of it.
func (db *DB) AddAttempts(ctx context.Context, keys []string, delta int, window time.Duration, now time.Time) (map[string]conduit.AttemptWindow, error) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	nowMs, resetMs := now.UnixMilli(), now.Add(window).UnixMilli()
	values := make([]string, len(keys))
	args := make([]any, 0, 3*len(keys)+4)
	for i, k := range keys {
		values[i] = "(?, ?, ?)"
		args = append(args, k, max(delta, 0), resetMs)
	}
	q := `
		INSERT INTO auth_attempts (attempt_key, count, reset_at) VALUES ` + strings.Join(values, ", ") + `
		ON CONFLICT (attempt_key) DO UPDATE SET
			count = CASE WHEN auth_attempts.reset_at <= ? THEN excluded.count
			             WHEN auth_attempts.count + ? < 0 THEN 0
			             ELSE auth_attempts.count + ? END,
			reset_at = CASE WHEN auth_attempts.reset_at <= ? THEN excluded.reset_at ELSE auth_attempts.reset_at END
		RETURNING attempt_key, count, reset_at`
	args = append(args, nowMs, delta, delta, nowMs)
	ctx, cancel := db.bound(ctx)
	defer cancel()
	rs, err := db.write.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, db.mapErr(err)
	}
	defer rs.Close()
	return db.scanAttempts(rs)
}

func (db *DB) scanAttempts(rs interface {
	Next() bool
	Scan(...any) error
	Err() error
}) (map[string]conduit.AttemptWindow, error) {
	m := map[string]conduit.AttemptWindow{}
	for rs.Next() {
		var (
			k     string
			count int
			reset int64
		)
		if err := rs.Scan(&k, &count, &reset); err != nil {
			return nil, db.mapErr(err)
		}
		m[k] = conduit.AttemptWindow{Count: count, ResetAt: time.UnixMilli(reset)}
	}
	return m, db.mapErr(rs.Err())
}

// PurgeAttempts implements conduit.AttemptCounter. On PostgreSQL it skips
// rows that a sign-in is updating at that moment (they are being given a
// new window anyway), so the purge never waits for, or deadlocks with,
// the counting; SQLite has a single writer and nothing to skip.
func (db *DB) PurgeAttempts(ctx context.Context, now time.Time) (int64, error) {
	q := `DELETE FROM auth_attempts WHERE reset_at <= ?`
	if db.d.name == "postgres" {
		q = `DELETE FROM auth_attempts WHERE attempt_key IN (
			SELECT attempt_key FROM auth_attempts WHERE reset_at <= ? FOR UPDATE SKIP LOCKED)`
	}
	res, err := db.execWrite(ctx, q, now.UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
