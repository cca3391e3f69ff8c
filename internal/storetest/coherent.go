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
