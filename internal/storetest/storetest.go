// Package storetest opens fresh databases for tests: an embedded SQLite file
// in a temp dir always, and PostgreSQL when CONDUIT_TEST_POSTGRES_URL is set.
// Tests that take a backend run once per backend with t.Run.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
)

// Backend opens a fresh, migrated database for one test.
type Backend struct {
	Name string
	Open func(t testing.TB) *store.DB
}

// Backends lists the databases tests run against here.
func Backends(t testing.TB) []Backend {
	return []Backend{{Name: "sqlite", Open: OpenSQLite}}
}

// Each runs f once per backend, each with a fresh database.
func Each(t *testing.T, f func(t *testing.T, db *store.DB)) {
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, b.Open(t)) })
	}
}

// OpenSQLite returns a migrated SQLite database in a temp dir, closed when
// the test ends.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "conduit.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return db
}
