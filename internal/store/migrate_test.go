package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/store/migrations"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Several nodes starting at once migrate one after the other under the
// advisory lock: every migration is applied exactly once and nobody fails.
func TestPostgresConcurrentMigrate(t *testing.T) {
	t.Parallel()
	url := storetest.NewPostgresDatabase(t)
	ctx := context.Background()
	const nodes = 5
	dbs := make([]*store.DB, nodes)
	for i := range dbs {
		db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	applied := make([]int, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Add(1)
		go func() { defer wg.Done(); applied[i], errs[i] = db.Migrate(ctx) }()
	}
	wg.Wait()
	total := 0
	for i := range dbs {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	ms, err := migrations.List("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if total != len(ms) {
		t.Fatalf("%d migrations applied in total, want %d (each once)", total, len(ms))
	}
	for _, db := range dbs {
		if err := db.CheckSchema(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
