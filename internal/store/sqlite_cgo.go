//go:build sqlite_cgo

package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// sqliteEngine names the SQLite engine this build links:
// github.com/mattn/go-sqlite3, SQLite's C source compiled through cgo.
const sqliteEngine = "cgo"

// sqliteTimeFormat is how modernc.org/sqlite, the default engine, writes a
// time.Time (time.Time.String without a monotonic reading), so it is what
// every database written by a default build holds in its DATETIME
// columns. go-sqlite3 would write "2006-01-02 15:04:05.999999999-07:00"
// and, not knowing this format, read those columns as the zero time. Made
// its first format, it is the one it writes and the first it tries when
// reading: a database written by one build reads the same in the other,
// and the two formats are never mixed in a column (both sort by time as
// text, but not with each other).
const sqliteTimeFormat = "2006-01-02 15:04:05.999999999 -0700 MST"

func init() {
	sqlite3.SQLiteTimestampFormats = append([]string{sqliteTimeFormat}, sqlite3.SQLiteTimestampFormats...)
}

// openSQLitePool opens a pool on the database file at path whose every new
// connection runs the pragmas, in order; immediate makes its transactions
// BEGIN IMMEDIATE. The pragmas run in a connect hook rather than through
// the driver's own DSN keys, which cover only some of them and default
// others (synchronous NORMAL): the same statements as the default engine
// runs, after the driver's.
func openSQLitePool(path string, pragmas []string, immediate bool) (*sql.DB, error) {
	dsn := "file:" + path
	if immediate {
		dsn += "?_txlock=immediate"
	}
	d := &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for _, p := range pragmas {
			if _, err := c.Exec("PRAGMA "+p, nil); err != nil {
				return fmt.Errorf("PRAGMA %s: %w", p, err)
			}
		}
		return nil
	}}
	return sql.OpenDB(sqliteConnector{d: d, dsn: dsn}), nil
}

// sqliteConnector gives each pool a driver of its own, so that the read
// pool's hook can set query_only and the writer's not.
type sqliteConnector struct {
	d   *sqlite3.SQLiteDriver
	dsn string
}

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c sqliteConnector) Driver() driver.Driver                        { return c.d }

// sqliteBuildTags is the one way to build with this engine: go-sqlite3
// compiles FTS5 and STAT4 only with its tags sqlite_fts5 and sqlite_stat4.
const sqliteBuildTags = `-tags "sqlite_cgo sqlite_fts5 sqlite_stat4"`

// checkSQLiteEngine fails the open if the linked SQLite lacks what the
// default engine has and the store relies on: FTS5, without which the
// migrations or the first search fail ("no such module: fts5"), and STAT4,
// without which the planner ignores the sqlite_stat4 that ANALYZE wrote
// (the seed runs it) and may choose other plans than the default build
// for the same database.
func checkSQLiteEngine(ctx context.Context, db *sql.DB) error {
	for _, opt := range []string{"ENABLE_FTS5", "ENABLE_STAT4"} {
		var used bool
		if err := db.QueryRowContext(ctx, `SELECT sqlite_compileoption_used(?)`, opt).Scan(&used); err != nil {
			return err
		}
		if !used {
			return fmt.Errorf("this build's SQLite was compiled without %s: build with %s", opt, sqliteBuildTags)
		}
	}
	return nil
}

func sqliteUniqueField(err error) string {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey) {
		return fieldOfIndex(se.Error())
	}
	return ""
}

func sqliteMissingRef(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintForeignKey
}
