package storetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/store"
)

// Coherent returns a memory cache of 1,000 items kept coherent through
// db's LISTEN/NOTIFY, as cmd/conduit wires a node on PostgreSQL without
// Redis. It returns once the listener is connected, and stops the
// listener when the test ends (before db is closed, if db was opened
// before the call).
func Coherent(t testing.TB, db *store.DB) *cache.Coherent {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := cache.NewCoherent(cache.NewMemory(1000), cache.CoherentOptions{
		Publish:    func(ctx context.Context, p string) error { return db.Notify(ctx, "conduit_cache", p) },
		MaxPayload: store.MaxNotifyPayload,
		Logger:     logger,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { db.Listen(ctx, "conduit_cache", c, logger); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for c.Connects() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("listener did not connect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c
}

// Node opens the database at url as one more node would (a pool of its
// own, closed when the test ends), for tests of several nodes on one
// database.
func Node(t testing.TB, url string) *store.DB {
	t.Helper()
	db, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// AwaitPeers waits until each of two coherent caches has heard of the
// other, so that a write on one is acknowledged only once the other has
// its invalidation.
func AwaitPeers(t testing.TB, a, b *cache.Coherent) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a.Peers() != 1 || b.Peers() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the nodes did not learn of each other")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
