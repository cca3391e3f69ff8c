//go:build !sqlite_cgo

package store

import (
	"context"
	"database/sql"
	"errors"
	"net/url"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteEngine names the SQLite engine this build links: modernc.org/sqlite,
// SQLite translated to Go, which builds with CGO_ENABLED=0.
const sqliteEngine = "modernc"

// openSQLitePool opens a pool on the database file at path whose every new
// connection runs the pragmas, in order (the driver's _pragma parameters);
// immediate makes its transactions BEGIN IMMEDIATE.
func openSQLitePool(path string, pragmas []string, immediate bool) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	if immediate {
		dsn += "&_txlock=immediate"
	}
	return sql.Open("sqlite", dsn)
}

// checkSQLiteEngine has nothing to check: modernc.org/sqlite always
// includes FTS5 and STAT4.
func checkSQLiteEngine(context.Context, *sql.DB) error { return nil }

func sqliteUniqueField(err error) string {
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fieldOfIndex(se.Error())
	}
	return ""
}

func sqliteMissingRef(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
