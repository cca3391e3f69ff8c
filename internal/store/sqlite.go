package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// The SQLite engine is chosen at build time: modernc.org/sqlite (pure Go,
// the default) or, with the build tags sqlite_cgo, sqlite_fts5 and
// sqlite_stat4, github.com/mattn/go-sqlite3 (SQLite's C source through cgo). Each of
// sqlite_modernc.go and sqlite_cgo.go provides sqliteEngine,
// openSQLitePool, checkSQLiteEngine, sqliteUniqueField and
// sqliteMissingRef; everything else is the same SQL on either
// (docs/architecture.md, "Choosing the SQLite driver").

// sqlitePragmas are run, in this order, on every new connection of both
// pools, whichever the engine.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"foreign_keys(1)",
	// FULL syncs the WAL on every commit: a write that was answered
	// survives a power loss, not just a process crash.
	"synchronous(FULL)",
	"temp_store(MEMORY)",
	// No memory map (mmap_size 0, SQLite's default). A WAL reader's
	// page cache is emptied whenever another connection has committed,
	// and with a map SQLite also unmaps the whole of it then, so that
	// every later read faults its pages in again: on the full dataset,
	// with the mix's commits, munmap took 7% of the server's CPU and
	// the faults, counted in btreeInitPage, another ~20%; reading
	// pages with pread instead cost 25-45% less CPU per request, in
	// alternating runs (docs/performance.md, round of 2026-12-01,
	// third). The map paid only while nothing was written.
	"mmap_size(0)",
}

// OpenSQLite opens (creating if needed) the database file at path in WAL
// mode. Writes go through a single connection with BEGIN IMMEDIATE, so
// concurrent writers wait their turn in Go rather than surface SQLITE_BUSY;
// reads use a pool of their own that WAL lets run beside the writer.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	write, err := openSQLitePool(path, withPragmas(cacheSize(sqliteWriteCacheKiB)), true)
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)

	read, err := openSQLitePool(path, withPragmas(cacheSize(sqliteReadCacheKiB), "query_only(1)"), false)
	if err != nil {
		write.Close()
		return nil, err
	}
	n := sqliteReadConns()
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)

	db := &DB{read: read, write: write, d: dialect{
		name:        "sqlite",
		rebind:      func(q string) string { return q },
		uniqueField: sqliteUniqueField,
		missingRef:  sqliteMissingRef,
	}, readStmts: newStmtCache(read), celebs: newCelebCache()}
	// The first connection creates the file and switches it to WAL.
	if err := write.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := checkSQLiteEngine(ctx, write); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// withPragmas is sqlitePragmas followed by more, for one pool.
func withPragmas(more ...string) []string {
	return append(append([]string(nil), sqlitePragmas...), more...)
}

// cacheSize is the pragma that sets a connection's page cache.
func cacheSize(kib int) string { return fmt.Sprintf("cache_size(-%d)", kib) }
