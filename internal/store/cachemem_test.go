package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// The readers' and the writer's page caches are what SQLiteCacheBytes
// counts (serve lowers the Go memory limit by it).
func TestSQLiteCacheSizes(t *testing.T) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cacheOf := func(pool *sql.DB) int {
		t.Helper()
		var n int
		if err := pool.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := cacheOf(db.read); got != -sqliteReadCacheKiB {
		t.Errorf("a reader's cache_size is %d, want %d", got, -sqliteReadCacheKiB)
	}
	if got := cacheOf(db.write); got != -sqliteWriteCacheKiB {
		t.Errorf("the writer's cache_size is %d, want %d", got, -sqliteWriteCacheKiB)
	}
	// Every reader, not just the first: hold them all at once.
	var conns []*sql.Conn
	for range sqliteReadConns() {
		c, err := db.read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var n int
		if err := c.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&n); err != nil || n != -sqliteReadCacheKiB {
			t.Errorf("reader %d: cache_size %d (%v), want %d", len(conns), n, err, -sqliteReadCacheKiB)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	want := int64(sqliteReadConns()*sqliteReadCacheKiB+sqliteWriteCacheKiB) * 1024
	if got := SQLiteCacheBytes(); got != want {
		t.Errorf("SQLiteCacheBytes() = %d, want %d", got, want)
	}
}
