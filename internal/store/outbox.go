package store

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// The transactional outbox (migration 0011): write methods enqueue the jobs
// of their write in its transaction (sqlTx.enqueue), and workers claim,
// finish, retry or bury them with the methods below. docs/stage7.md.

// enqueue inserts jobs into the outbox within the transaction: they are
// committed, or rolled back, with the write.
func (t *sqlTx) enqueue(ctx context.Context, jobs []conduit.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	values, args := jobValues(ctx, jobs, "")
	_, err := t.exec(ctx, `INSERT INTO jobs (kind, key, payload, trace, created_at, run_at) VALUES `+
		values, args...)
	if err == nil {
		t.enqueued = true
	}
	return err
}

// jobValues returns the VALUES rows of jobs for an INSERT INTO jobs (kind,
// key, payload, trace, created_at, run_at), and their arguments. cast
// suffixes each placeholder with its type ("::" casts on PostgreSQL, for
// rows that are not the INSERT's own VALUES and so get no type from it).
func jobValues(ctx context.Context, jobs []conduit.Job, cast string) (string, []any) {
	now := time.Now().UnixMilli()
	parent := traceParent(ctx)
	args := make([]any, 0, 6*len(jobs))
	for _, j := range jobs {
		if j.Trace == "" {
			j.Trace = parent
		}
		args = append(args, j.Kind, j.Key, string(j.Payload), j.Trace, now, now)
	}
	row := "(?, ?, ?, ?, ?, ?), "
	if cast != "" {
		row = "(?::text, ?::text, ?::text, ?::text, ?::bigint, ?::bigint), "
	}
	return strings.TrimSuffix(strings.Repeat(row, len(jobs)), ", "), args
}

// OnJobs sets a function called after every commit that enqueued jobs, so
// that a worker in this process can start at once instead of at its next
// poll. It must not block.
func (db *DB) OnJobs(fn func()) { db.jobsWaiting = fn }

// Enqueue writes jobs to the outbox in a transaction of their own (jobs
// that no single write causes, such as timeline builds).
func (db *DB) Enqueue(ctx context.Context, jobs ...conduit.Job) error {
	return db.tx(ctx, func(tx *sqlTx) error { return tx.enqueue(ctx, jobs) })
}

// ClaimJobs takes up to limit due jobs, oldest first, and leases them for
// lease: their run_at moves that far ahead, so that if this worker dies
// they are claimed again once the lease is over. On PostgreSQL, SKIP
// LOCKED lets several workers claim at once without waiting for or
// taking each other's rows; on SQLite the single writer connection does
// the same by running one claim at a time.
//
// done are jobs of an earlier claim whose effect is committed: they are
// deleted in the same transaction, so that a worker going from one batch
// to the next commits once, not once per job and once more for the claim.
// If the claim fails, they are not deleted either.
func (db *DB) ClaimJobs(ctx context.Context, limit int, lease time.Duration, done ...int64) ([]conduit.Job, error) {
	now := time.Now()
	lock := ""
	if db.d.name == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var jobs []conduit.Job
	err := db.tx(ctx, func(tx *sqlTx) error {
		if len(done) > 0 {
			q, args := completeJobs(done)
			if _, err := tx.exec(ctx, q, args...); err != nil {
				return err
			}
		}
		rs, err := tx.tx.QueryContext(ctx, tx.d.rebind(`
			UPDATE jobs SET run_at = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM jobs WHERE run_at <= ? ORDER BY run_at, id LIMIT ?`+lock+`)
			RETURNING id, kind, key, payload, trace, created_at, attempts`),
			now.Add(lease).UnixMilli(), now.UnixMilli(), limit)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var j conduit.Job
			var payload string
			var created int64
			if err := rs.Scan(&j.ID, &j.Kind, &j.Key, &payload, &j.Trace, &created, &j.Attempts); err != nil {
				return err
			}
			j.Payload, j.CreatedAt = []byte(payload), time.UnixMilli(created).UTC()
			jobs = append(jobs, j)
		}
		return rs.Err()
	})
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].ID < jobs[b].ID })
	return jobs, err
}

// CompleteJobs deletes jobs whose effect is committed (or that were handed
// to the broker), all in one statement: one commit for a batch. An id no
// longer in the outbox (completed by another worker after a lease ran out)
// is no error.
func (db *DB) CompleteJobs(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	q, args := completeJobs(ids)
	_, err := db.execWrite(ctx, q, args...)
	return err
}

// completeJobs is the DELETE of the jobs ids, and its arguments. Workers
// complete disjoint sets but for leases that ran out; in id order, two
// deletes that share rows take them in the same order and cannot deadlock.
func completeJobs(ids []int64) (string, []any) {
	sorted := slices.Sorted(slices.Values(ids))
	args := make([]any, len(sorted))
	for i, id := range sorted {
		args[i] = id
	}
	return `DELETE FROM jobs WHERE id IN (` + placeholders(len(ids)) + `)`, args
}

// RetryJob releases a claimed job to run again at at, noting why it failed.
func (db *DB) RetryJob(ctx context.Context, id int64, at time.Time, reason string) error {
	_, err := db.execWrite(ctx, `UPDATE jobs SET run_at = ?, last_error = ? WHERE id = ?`,
		at.UnixMilli(), truncate(reason, 1000), id)
	return err
}

// BuryJob moves a job that failed for good to the dead letters (it need
// not be in the outbox any more: a job delivered through NATS is not).
func (db *DB) BuryJob(ctx context.Context, j conduit.Job, reason string) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		if _, err := tx.exec(ctx, `
			INSERT INTO dead_jobs (id, kind, key, payload, trace, created_at, attempts, last_error, died_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`,
			j.ID, j.Kind, j.Key, string(j.Payload), j.Trace, j.CreatedAt.UnixMilli(), j.Attempts,
			truncate(reason, 1000), time.Now().UnixMilli()); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `DELETE FROM jobs WHERE id = ?`, j.ID)
		return err
	})
}

// PendingJobs lists up to limit jobs of the outbox, oldest first.
func (db *DB) PendingJobs(ctx context.Context, limit int) ([]conduit.PendingJob, error) {
	rs, err := db.query(ctx, `
		SELECT id, kind, key, payload, trace, created_at, attempts, run_at, last_error
		FROM jobs ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []conduit.PendingJob
	for rs.Next() {
		var p conduit.PendingJob
		var payload string
		var created, runAt int64
		if err := rs.Scan(&p.ID, &p.Kind, &p.Key, &payload, &p.Trace, &created, &p.Attempts, &runAt, &p.LastError); err != nil {
			return nil, db.mapErr(err)
		}
		p.Payload, p.CreatedAt, p.RunAt = []byte(payload), time.UnixMilli(created).UTC(), time.UnixMilli(runAt).UTC()
		out = append(out, p)
	}
	return out, db.mapErr(rs.Err())
}

// DeadJobs lists up to limit dead letters, oldest first.
func (db *DB) DeadJobs(ctx context.Context, limit int) ([]conduit.DeadJob, error) {
	rs, err := db.query(ctx, `
		SELECT id, kind, key, payload, trace, created_at, attempts, last_error, died_at
		FROM dead_jobs ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []conduit.DeadJob
	for rs.Next() {
		var d conduit.DeadJob
		var payload string
		var created, died int64
		if err := rs.Scan(&d.ID, &d.Kind, &d.Key, &payload, &d.Trace, &created, &d.Attempts, &d.LastError, &died); err != nil {
			return nil, db.mapErr(err)
		}
		d.Payload, d.CreatedAt, d.DiedAt = []byte(payload), time.UnixMilli(created).UTC(), time.UnixMilli(died).UTC()
		out = append(out, d)
	}
	return out, db.mapErr(rs.Err())
}

// RetryDeadJobs puts dead letters back into the outbox as new jobs (with
// new ids, no attempts yet): the one with id, or all of them for id 0. It
// returns how many.
func (db *DB) RetryDeadJobs(ctx context.Context, id int64) (int64, error) {
	where, args := deadWhere(id)
	var n int64
	err := db.tx(ctx, func(tx *sqlTx) error {
		now := time.Now().UnixMilli()
		res, err := tx.exec(ctx, `
			INSERT INTO jobs (kind, key, payload, trace, created_at, run_at)
			SELECT kind, key, payload, trace, ?, ? FROM dead_jobs`+where+` ORDER BY id`,
			append([]any{now, now}, args...)...)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if n > 0 {
			tx.enqueued = true // woken after the commit
		}
		_, err = tx.exec(ctx, `DELETE FROM dead_jobs`+where, args...)
		return err
	})
	return n, err
}

// DropDeadJobs deletes dead letters: the one with id, or all for id 0.
func (db *DB) DropDeadJobs(ctx context.Context, id int64) (int64, error) {
	where, args := deadWhere(id)
	res, err := db.execWrite(ctx, `DELETE FROM dead_jobs`+where, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func deadWhere(id int64) (string, []any) {
	if id == 0 {
		return "", nil
	}
	return " WHERE id = ?", []any{id}
}

// JobStats counts the outbox and the dead letters per kind. The outbox is
// small while workers keep up; its count is a range of jobs_due_idx.
func (db *DB) JobStats(ctx context.Context) ([]conduit.JobStats, error) {
	byKind := map[string]*conduit.JobStats{}
	get := func(k string) *conduit.JobStats {
		s, ok := byKind[k]
		if !ok {
			s = &conduit.JobStats{Kind: k}
			byKind[k] = s
		}
		return s
	}
	rs, err := db.query(ctx, `SELECT kind, count(*), min(created_at) FROM jobs GROUP BY kind`)
	if err != nil {
		return nil, err
	}
	for rs.Next() {
		var k string
		var n int
		var oldest int64
		if err := rs.Scan(&k, &n, &oldest); err != nil {
			rs.Close()
			return nil, db.mapErr(err)
		}
		s := get(k)
		s.Pending, s.Oldest = n, time.UnixMilli(oldest).UTC()
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, db.mapErr(err)
	}
	rs, err = db.query(ctx, `SELECT kind, count(*) FROM dead_jobs GROUP BY kind`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var k string
		var n int
		if err := rs.Scan(&k, &n); err != nil {
			return nil, db.mapErr(err)
		}
		get(k).Dead = n
	}
	out := make([]conduit.JobStats, 0, len(byKind))
	for _, s := range byKind {
		out = append(out, *s)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Kind < out[b].Kind })
	return out, db.mapErr(rs.Err())
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
