package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// sqliteBulk loads rows through the single write connection with
// multi-row INSERT statements prepared once, one transaction per batch.
// During the load: synchronous=OFF (a crash mid-seed means seeding again),
// foreign key checks off (the generator keeps references valid and
// CheckIntegrity proves it), a larger page cache, and the secondary indexes
// dropped and built afterwards from sorted data, which is several times
// faster than maintaining them row by row.
type sqliteBulk struct {
	db      *DB
	conn    *sql.Conn
	indexes []string // CREATE INDEX statements to run in Finish
	stmts   map[string]*sql.Stmt
	done    bool
}

// sqliteRowsPerInsert is how many rows one INSERT statement carries; with
// at most 8 columns it stays far below SQLite's 32766 bound parameters.
const sqliteRowsPerInsert = 256

func (db *DB) bulkLoadSQLite(ctx context.Context) (BulkLoader, error) {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, err
	}
	l := &sqliteBulk{db: db, conn: conn, stmts: map[string]*sql.Stmt{}}
	if err := l.start(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *sqliteBulk) start(ctx context.Context) error {
	for _, p := range []string{
		`PRAGMA synchronous = OFF`,
		`PRAGMA foreign_keys = OFF`,
		`PRAGMA cache_size = -262144`, // 256 MiB
		// A second thread for the sorter of CREATE INDEX: follows_followee_idx
		// (20M rows) built ~10% faster in four alternating pairs, for the
		// same or more CPU (docs/performance.md, "Issue 14: the seed's FTS
		// index in one segment").
		`PRAGMA threads = 2`,
	} {
		if _, err := l.conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	rows, err := l.conn.QueryContext(ctx, `
		SELECT name, sql FROM sqlite_master
		WHERE type = 'index' AND sql IS NOT NULL
		  AND tbl_name IN ('`+strings.Join(seedTables, "', '")+`')
		ORDER BY name`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return err
		}
		names = append(names, name)
		l.indexes = append(l.indexes, def)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := l.conn.ExecContext(ctx, `DROP INDEX `+n); err != nil {
			return fmt.Errorf("drop index %s: %w", n, err)
		}
	}
	return nil
}

// insert writes n rows into table in one transaction; args appends the
// values of row i.
func (l *sqliteBulk) insert(ctx context.Context, table string, cols []string, n int, args func(dst []any, i int) []any) error {
	if n == 0 {
		return nil
	}
	tx, err := l.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	full, err := l.stmt(ctx, table, cols, sqliteRowsPerInsert)
	if err != nil {
		return err
	}
	txFull := tx.StmtContext(ctx, full)
	buf := make([]any, 0, len(cols)*sqliteRowsPerInsert)
	for start := 0; start < n; start += sqliteRowsPerInsert {
		end := min(start+sqliteRowsPerInsert, n)
		buf = buf[:0]
		for i := start; i < end; i++ {
			buf = args(buf, i)
		}
		s := txFull
		if end-start < sqliteRowsPerInsert {
			part, err := l.stmt(ctx, table, cols, end-start)
			if err != nil {
				return err
			}
			s = tx.StmtContext(ctx, part)
		}
		if _, err := s.ExecContext(ctx, buf...); err != nil {
			return fmt.Errorf("insert %s: %w", table, err)
		}
	}
	return tx.Commit()
}

// stmt returns the prepared INSERT of rows rows into table.
func (l *sqliteBulk) stmt(ctx context.Context, table string, cols []string, rows int) (*sql.Stmt, error) {
	key := fmt.Sprintf("%s/%d", table, rows)
	if s, ok := l.stmts[key]; ok {
		return s, nil
	}
	one := "(" + placeholders(len(cols)) + ")"
	q := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES ` +
		strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
	s, err := l.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if rows == sqliteRowsPerInsert {
		l.stmts[key] = s // partial sizes are rare; they are not kept
	}
	return s, nil
}

var (
	userCols     = []string{"id", "username", "username_key", "email", "password_hash", "bio", "image", "created_at", "updated_at"}
	followCols   = []string{"follower_id", "followee_id", "created_at"}
	articleCols  = []string{"id", "slug", "author_id", "title", "description", "body", "favorites_count", "created_at", "updated_at"}
	tagCols      = []string{"article_id", "tag"}
	favoriteCols = []string{"user_id", "article_id", "created_at"}
	commentCols  = []string{"id", "article_id", "author_id", "body", "created_at", "updated_at"}
)

func (l *sqliteBulk) Users(ctx context.Context, rows []UserRow) error {
	return l.insert(ctx, "users", userCols, len(rows), func(d []any, i int) []any {
		r := &rows[i]
		return append(d, r.ID, r.Username, conduit.UsernameKey(r.Username), r.Email, r.PasswordHash, r.Bio, r.Image, r.CreatedAt, r.CreatedAt)
	})
}

func (l *sqliteBulk) Follows(ctx context.Context, rows []FollowRow) error {
	return l.insert(ctx, "follows", followCols, len(rows), func(d []any, i int) []any {
		r := &rows[i]
		return append(d, r.FollowerID, r.FolloweeID, r.CreatedAt)
	})
}

func (l *sqliteBulk) Articles(ctx context.Context, rows []ArticleRow) error {
	return l.insert(ctx, "articles", articleCols, len(rows), func(d []any, i int) []any {
		r := &rows[i]
		return append(d, r.ID, r.Slug, r.AuthorID, r.Title, r.Description, r.Body, r.FavoritesCount, r.CreatedAt, r.CreatedAt)
	})
}

func (l *sqliteBulk) ArticleTags(ctx context.Context, rows []ArticleTagRow) error {
	return l.insert(ctx, "article_tags", tagCols, len(rows), func(d []any, i int) []any {
		return append(d, rows[i].ArticleID, rows[i].Tag)
	})
}

func (l *sqliteBulk) Favorites(ctx context.Context, rows []FavoriteRow) error {
	return l.insert(ctx, "favorites", favoriteCols, len(rows), func(d []any, i int) []any {
		r := &rows[i]
		return append(d, r.UserID, r.ArticleID, r.CreatedAt)
	})
}

func (l *sqliteBulk) Comments(ctx context.Context, rows []CommentRow) error {
	return l.insert(ctx, "comments", commentCols, len(rows), func(d []any, i int) []any {
		r := &rows[i]
		return append(d, r.ID, r.ArticleID, r.AuthorID, r.Body, r.CreatedAt, r.CreatedAt)
	})
}

// Finish builds the dropped indexes, gathers planner statistics and
// restores the connection's normal pragmas.
func (l *sqliteBulk) Finish(ctx context.Context, step func(string)) error {
	if step == nil {
		step = func(string) {}
	}
	for _, s := range l.stmts {
		s.Close()
	}
	l.stmts = map[string]*sql.Stmt{}
	for _, def := range l.indexes {
		step("index " + indexName(def))
		if _, err := l.conn.ExecContext(ctx, def); err != nil {
			return fmt.Errorf("%s: %w", def, err)
		}
	}
	l.indexes = nil
	step("counters")
	for _, q := range refreshCounters {
		if _, err := l.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	step("search index")
	// The triggers filled the full-text index row by row, leaving it in
	// many segments (16 at scale 1), each searched by every query: one
	// merged segment makes a one- or two-word search ~25% cheaper, for
	// ~30 s of CPU here at scale 1 ('optimize' merges all in one pass; a
	// final 'merge' cost the same). docs/performance.md, "Issue 14: the
	// seed's FTS index in one segment".
	if _, err := l.conn.ExecContext(ctx, `INSERT INTO articles_fts (articles_fts) VALUES ('optimize')`); err != nil {
		return fmt.Errorf("merging the search index: %w", err)
	}
	step("analyze")
	// A bounded ANALYZE: sqlite_stat1 lets the planner pick the right index
	// for the filtered lists, and the limit keeps this to seconds.
	for _, q := range []string{`PRAGMA analysis_limit = 1000`, `ANALYZE`, `PRAGMA analysis_limit = 0`} {
		if _, err := l.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	step("checkpoint")
	if _, err := l.conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	l.done = true
	return l.restore(ctx)
}

// restore puts back the pragmas OpenSQLite set on the write connection.
func (l *sqliteBulk) restore(ctx context.Context) error {
	var errs []error
	for _, p := range []string{`PRAGMA synchronous = FULL`, `PRAGMA foreign_keys = ON`, fmt.Sprintf(`PRAGMA cache_size = -%d`, sqliteWriteCacheKiB), `PRAGMA threads = 0`} {
		if _, err := l.conn.ExecContext(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close releases the connection. Without Finish, it still tries to
// rebuild the indexes so that the schema is whole, if not the data.
func (l *sqliteBulk) Close() error {
	ctx := context.Background()
	for _, s := range l.stmts {
		s.Close()
	}
	var errs []error
	if !l.done {
		for _, def := range l.indexes {
			if _, err := l.conn.ExecContext(ctx, def); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, l.restore(ctx))
	}
	errs = append(errs, l.conn.Close())
	return errors.Join(errs...)
}

// indexName picks the name out of a CREATE INDEX statement.
func indexName(def string) string {
	f := strings.Fields(def)
	for i, w := range f {
		if strings.EqualFold(w, "INDEX") && i+1 < len(f) {
			return f[i+1]
		}
	}
	return def
}
