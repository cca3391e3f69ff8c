package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store/migrations"
)

// copyTable is one table moved by CopyToPostgres, in foreign-key order.
type copyTable struct {
	name    string
	columns []string
	order   string // a stable order for reading
	// identity names the identity column whose sequence is moved past the
	// copied ids, or "".
	identity string
}

var copyTables = []copyTable{
	{"users", []string{"id", "username", "username_key", "email", "password_hash", "bio", "image", "token_gen", "created_at", "updated_at"}, "id", "id"},
	// Revocations travel with the users: without them, revoked tokens
	// would work again on PostgreSQL.
	{"revoked_tokens", []string{"user_id", "token_id", "expires_at"}, "user_id, token_id", ""},
	{"follows", []string{"follower_id", "followee_id", "created_at"}, "follower_id, followee_id", ""},
	{"articles", []string{"id", "slug", "author_id", "title", "description", "body", "favorites_count", "created_at", "updated_at"}, "id", "id"},
	{"article_slugs", []string{"slug", "article_id"}, "slug", ""},
	{"article_tags", []string{"article_id", "tag"}, "article_id, tag", ""},
	{"favorites", []string{"user_id", "article_id", "created_at"}, "user_id, article_id", ""},
	{"comments", []string{"id", "article_id", "author_id", "body", "created_at", "updated_at"}, "id", "id"},
	// Stage 7: notifications, and the jobs not done yet (timelines are
	// not copied: they are rebuilt, see docs/stage7.md).
	{"notifications", []string{"id", "user_id", "kind", "group_key", "article_id", "actor_id", "actors", "seq", "created_at", "updated_at", "read_at"}, "id", "id"},
	{"notification_events", []string{"user_id", "key", "notification_id", "actor_id", "created_at"}, "user_id, key", ""},
	{"jobs", []string{"id", "kind", "key", "payload", "trace", "created_at", "run_at", "attempts", "last_error"}, "id", "id"},
	{"dead_jobs", []string{"id", "kind", "key", "payload", "trace", "created_at", "attempts", "last_error", "died_at"}, "id", ""},
}

// copyKeys names the tables whose rows may become duplicates once their
// text is repaired (see repairText), with the number of leading columns
// that identify a row; the rows are read grouped by the first. A row whose
// key repeats one of its group is copied once. Only article_tags needs
// it: a tag is the only text in a key that stage 1 did not check for
// UTF-8.
var copyKeys = map[string]int{"article_tags": 2}

// CopyProgress is reported while CopyToPostgres runs: Done of Total rows
// of Table are copied.
type CopyProgress struct {
	Table       string
	Done, Total int64
}

// TableCount is the number of rows of one table in the source and, after
// the copy, in the target.
type TableCount struct {
	Table          string
	Source, Target int64
	// Repaired counts the text values that were not text (invalid UTF-8
	// or NUL, which stage 1 stored and PostgreSQL refuses): they were
	// copied with each bad sequence replaced by U+FFFD.
	Repaired int64
	// Merged counts the rows that became equal to the row before them
	// once repaired (two tags of an article that differed in bad bytes
	// only): they were copied once. Target is Source - Merged.
	Merged int64
}

// copyBatch is how many rows go to the server per COPY round trip at most;
// reads from SQLite stream, so memory stays small whatever the table size.
const copyBatch = 5000

// CopyToPostgres copies every row of the SQLite database src into the
// PostgreSQL database dst, which must be migrated to the same schema
// version and hold no data. Ids, password hashes, slugs and timestamps are
// kept as they are; identity sequences are moved past the copied ids. It
// all happens in one PostgreSQL transaction: a failure leaves dst empty.
// Row counts are compared before commit and returned.
func CopyToPostgres(ctx context.Context, src, dst *DB, progress func(CopyProgress)) ([]TableCount, error) {
	if src.d.name != "sqlite" || dst.d.name != "postgres" || dst.pool == nil {
		return nil, errors.New("copy: the source must be SQLite and the target PostgreSQL")
	}
	if progress == nil {
		progress = func(CopyProgress) {}
	}
	srcVer, err := migrations.Current(ctx, src.write)
	if err != nil {
		return nil, fmt.Errorf("source schema: %w", err)
	}
	dstVer, err := migrations.Current(ctx, dst.write)
	if err != nil {
		return nil, fmt.Errorf("target schema: %w", dst.mapErr(err))
	}
	want, err := migrations.Latest("postgres")
	if err != nil {
		return nil, err
	}
	if dstVer != want || srcVer != want {
		return nil, fmt.Errorf("copy: both databases must be at schema version %d (source is at %d, target at %d): run 'conduit migrate' on each first", want, srcVer, dstVer)
	}

	// A read transaction on SQLite is a snapshot: the copy is consistent
	// even if a stage-1 server is still writing (stop it first anyway, or
	// its later writes are not copied).
	stx, err := src.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer stx.Rollback()

	conn, err := dst.pool.Acquire(ctx)
	if err != nil {
		return nil, dst.mapErr(err)
	}
	defer conn.Release()
	// No statement timeout: a big table takes as long as it takes.
	ptx, err := conn.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, dst.mapErr(err)
	}
	defer ptx.Rollback(context.WithoutCancel(ctx))
	if _, err := ptx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
		return nil, dst.mapErr(err)
	}
	// Nobody else may write while we check emptiness and fill the tables.
	names := make([]string, len(copyTables))
	for i, t := range copyTables {
		names[i] = t.name
	}
	if _, err := ptx.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN EXCLUSIVE MODE"); err != nil {
		return nil, dst.mapErr(err)
	}
	for _, t := range copyTables {
		var has bool
		if err := ptx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+t.name+")").Scan(&has); err != nil {
			return nil, dst.mapErr(err)
		}
		if has {
			return nil, fmt.Errorf("copy: the target database is not empty (table %s has rows); copy only into a freshly migrated database", t.name)
		}
	}

	counts := make([]TableCount, len(copyTables))
	for i, t := range copyTables {
		counts[i].Table = t.name
		if err := stx.QueryRowContext(ctx, "SELECT count(*) FROM "+t.name).Scan(&counts[i].Source); err != nil {
			return nil, fmt.Errorf("count %s: %w", t.name, err)
		}
		progress(CopyProgress{Table: t.name, Total: counts[i].Source})
		rows, err := stx.QueryContext(ctx, "SELECT "+strings.Join(t.columns, ", ")+" FROM "+t.name+" ORDER BY "+t.order)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t.name, err)
		}
		rs := &rowSource{rows: rows, width: len(t.columns), key: copyKeys[t.name]}
		for !rs.finished {
			rs.batchLeft = copyBatch
			if _, err := ptx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, rs); err != nil {
				rows.Close()
				return nil, fmt.Errorf("copy %s: %w", t.name, dst.mapErr(err))
			}
			progress(CopyProgress{Table: t.name, Done: rs.read, Total: counts[i].Source})
		}
		rows.Close()
		counts[i].Repaired, counts[i].Merged = rs.repaired, rs.merged
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", t.name, err)
		}
		if t.identity != "" {
			// The next id is past the largest copied one, and past the
			// largest the source ever gave (id_high keeps those of deleted
			// rows, migration 0014): copied jobs may name them.
			var high int64
			if err := stx.QueryRowContext(ctx, `SELECT coalesce((SELECT id FROM id_high WHERE name = ?), 0)`, t.name).Scan(&high); err != nil {
				return nil, fmt.Errorf("read %s id high-water mark: %w", t.name, err)
			}
			q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%[1]s', '%[2]s'), greatest(coalesce(max(%[2]s), 0), $1) + 1, false) FROM %[1]s`, t.name, t.identity)
			if _, err := ptx.Exec(ctx, q, high); err != nil {
				return nil, fmt.Errorf("reset %s id sequence: %w", t.name, dst.mapErr(err))
			}
		}
	}

	// Counters kept beside the rows (article and tag counts) are derived,
	// not copied: compute them from what was just copied.
	for _, q := range refreshCounters {
		if _, err := ptx.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("recount: %w", dst.mapErr(err))
		}
	}

	// Verify from the target itself, not from what COPY reported.
	var bad []string
	for i, t := range copyTables {
		if err := ptx.QueryRow(ctx, "SELECT count(*) FROM "+t.name).Scan(&counts[i].Target); err != nil {
			return nil, dst.mapErr(err)
		}
		if counts[i].Target != counts[i].Source-counts[i].Merged {
			bad = append(bad, fmt.Sprintf("%s: %d in SQLite (%d merged), %d in PostgreSQL",
				t.name, counts[i].Source, counts[i].Merged, counts[i].Target))
		}
	}
	if len(bad) > 0 {
		return counts, fmt.Errorf("copy: row counts differ, nothing was committed: %s", strings.Join(bad, "; "))
	}
	if err := ptx.Commit(ctx); err != nil {
		return counts, dst.mapErr(err)
	}
	return counts, nil
}

// rowSource feeds COPY from SQLite rows, at most batchLeft rows per COPY,
// with text repaired (see repairText).
type rowSource struct {
	rows      *sql.Rows
	width     int
	key       int // see copyKeys
	vals      []any
	batchLeft int
	finished  bool
	err       error

	group any             // the first column of the current group (see key)
	seen  map[string]bool // the keys of the group seen so far

	read, repaired, merged int64
}

func (r *rowSource) Next() bool {
	for r.batchLeft > 0 && !r.finished {
		if !r.rows.Next() {
			r.finished = true
			r.err = r.rows.Err()
			return false
		}
		r.read++
		vals := make([]any, r.width)
		ptrs := make([]any, r.width)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if r.err = r.rows.Scan(ptrs...); r.err != nil {
			r.finished = true
			return false
		}
		for i, v := range vals {
			if s, ok := v.(string); ok && !conduit.IsText(s) {
				vals[i] = repairText(s)
				r.repaired++
			}
		}
		if r.key > 0 && r.duplicate(vals) {
			r.merged++
			continue
		}
		r.batchLeft--
		r.vals = vals
		return true
	}
	return false
}

// duplicate reports whether the key of vals was seen in its group.
func (r *rowSource) duplicate(vals []any) bool {
	if r.seen == nil || vals[0] != r.group {
		r.group, r.seen = vals[0], map[string]bool{}
	}
	k := fmt.Sprintf("%q", vals[1:r.key])
	if r.seen[k] {
		return true
	}
	r.seen[k] = true
	return false
}

// repairText replaces each sequence of s that is not text (invalid UTF-8,
// NUL) with U+FFFD, the character that stands for undecodable input.
func repairText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func (r *rowSource) Values() ([]any, error) { return r.vals, nil }
func (r *rowSource) Err() error             { return r.err }
