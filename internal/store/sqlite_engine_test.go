package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// engineEnv, if set ("modernc" or "cgo"), is the engine the test run must
// link: a CI step that builds with -tags "sqlite_cgo sqlite_fts5" sets it,
// so that losing the tags fails the run instead of testing the default
// engine twice.
const engineEnv = "CONDUIT_TEST_SQLITE_ENGINE"

func openTestSQLite(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conduit.db")
	db, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// The connections are served by the engine this build was meant to link:
// the pools' driver is that engine's, SQLite's source id is the one that
// engine carries, and it is the engine the run asked for.
func TestSQLiteEngineLinked(t *testing.T) {
	db, _ := openTestSQLite(t)
	if want := os.Getenv(engineEnv); want != "" && want != sqliteEngine {
		t.Fatalf("%s=%s, but this build links the %s engine", engineEnv, want, sqliteEngine)
	}
	var version, source string
	if err := db.read.QueryRow(`SELECT sqlite_version(), sqlite_source_id()`).Scan(&version, &source); err != nil {
		t.Fatal(err)
	}
	t.Logf("engine %s, SQLite %s (%s)", sqliteEngine, version, source)
	for name, pool := range map[string]*sql.DB{"read": db.read, "write": db.write} {
		if err := checkEngineDriver(pool.Driver()); err != nil {
			t.Errorf("%s pool: %v", name, err)
		}
	}
	if want := engineSourceID(); source != want {
		t.Errorf("sqlite_source_id() = %q, the %s engine carries %q", source, sqliteEngine, want)
	}
}

// Every connection of both pools has the settings OpenSQLite asks for,
// whichever the engine: the driver's own defaults (go-sqlite3 sets
// synchronous NORMAL and a 5 s busy timeout) must not win. The page caches
// of all of them add up to SQLiteCacheBytes, by which serve lowers the Go
// memory limit.
func TestSQLitePragmasOnEveryConnection(t *testing.T) {
	db, _ := openTestSQLite(t)
	ctx := context.Background()
	want := map[string]string{
		"busy_timeout": "10000",
		"journal_mode": "wal",
		"foreign_keys": "1",
		"synchronous":  "2", // FULL
		"temp_store":   "2", // MEMORY
		"mmap_size":    "0",
	}
	var caches int64 // bytes
	check := func(name string, c *sql.Conn, queryOnly string, cacheKiB int) {
		t.Helper()
		var cache int
		if err := c.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache); err != nil || cache != -cacheKiB {
			t.Errorf("%s: cache_size = %d (%v), want %d", name, cache, err, -cacheKiB)
		}
		caches += int64(-cache) << 10
		for p, w := range want {
			var got string
			if err := c.QueryRowContext(ctx, `PRAGMA `+p).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", name, p, err)
			}
			if got != w {
				t.Errorf("%s: %s = %s, want %s", name, p, got, w)
			}
		}
		var got string
		if err := c.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&got); err != nil || got != queryOnly {
			t.Errorf("%s: query_only = %s (%v), want %s", name, got, err, queryOnly)
		}
	}
	w, err := db.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("writer", w, "0", sqliteWriteCacheKiB)
	w.Close()
	// The whole read pool held at once, so that each is a new one.
	var held []*sql.Conn
	for i := range sqliteReadConns() {
		c, err := db.read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		check(fmt.Sprintf("reader %d", i+1), c, "1", sqliteReadCacheKiB)
	}
	for _, c := range held {
		c.Close()
	}
	if caches != SQLiteCacheBytes() {
		t.Errorf("the connections' page caches add up to %d bytes; SQLiteCacheBytes says %d", caches, SQLiteCacheBytes())
	}
}

// The writer's transactions take the write lock when they begin (BEGIN
// IMMEDIATE), not at their first write: another connection asking for it
// meanwhile is refused at once.
func TestSQLiteWriterBeginsImmediate(t *testing.T) {
	db, path := openTestSQLite(t)
	ctx := context.Background()
	other, err := openSQLitePool(path, []string{"busy_timeout(0)"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if otx, err := other.BeginTx(ctx, nil); err == nil {
		otx.Rollback()
		tx.Rollback()
		t.Fatal("a second writer began while the store's writer held a transaction that had written nothing")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	otx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("once the writer is done: %v", err)
	}
	otx.Rollback()
}

// A DATETIME is written as modernc.org/sqlite writes it (time.Time.String
// without a monotonic reading) and read back as the same instant in UTC,
// whichever the engine: a database written by one build serves the other.
func TestSQLiteTimesSameOnBothEngines(t *testing.T) {
	db, _ := openTestSQLite(t)
	ctx := context.Background()
	c, err := db.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `CREATE TEMP TABLE times (n INTEGER PRIMARY KEY, at DATETIME NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2021, 1, 3, 11, 2, 24, 123456000, time.UTC)
	if _, err := c.ExecContext(ctx, `INSERT INTO times (n, at) VALUES (1, ?), (2, '2022-05-06 07:08:09.5 +0000 UTC')`, at); err != nil {
		t.Fatal(err)
	}
	var text string
	if err := c.QueryRowContext(ctx, `SELECT at || '' FROM times WHERE n = 1`).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if want := "2021-01-03 11:02:24.123456 +0000 UTC"; text != want {
		t.Errorf("stored %q, want %q", text, want)
	}
	for n, want := range map[int]time.Time{1: at, 2: time.Date(2022, 5, 6, 7, 8, 9, 500000000, time.UTC)} {
		var got time.Time
		if err := c.QueryRowContext(ctx, `SELECT at FROM times WHERE n = ?`, n).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("row %d: read %v, want %v", n, got, want)
		}
	}
}
