package store_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A worker process that runs no web traffic hears of the jobs another
// process commits at once (NOTIFY), not at its next poll.
func TestListenJobsHearsOtherProcesses(t *testing.T) {
	url := storetest.NewMigratedPostgresDatabase(t)
	web, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	worker, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	woken := make(chan struct{}, 100)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		worker.ListenJobs(lctx, func() { woken <- struct{}{} }, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	select {
	case <-woken: // listening (a wake-up for what came before)
	case <-time.After(20 * time.Second):
		t.Fatal("ListenJobs never listened")
	}
	quiet := func(d time.Duration) bool {
		select {
		case <-woken:
			return false
		case <-time.After(d):
			return true
		}
	}
	if !quiet(200 * time.Millisecond) {
		t.Fatal("woken without a write")
	}
	a, b := mkUser(t, web, "a"), mkUser(t, web, "b")
	for len(woken) > 0 {
		<-woken
	}
	if err := web.Follow(ctx, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("the follow's jobs woke no listener")
	}
	stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ListenJobs did not return when its context ended")
	}
}
