package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// PoolStats names the pools of each database and shows a write waiting
// for a connection: the SQLite writer held by another write, a PostgreSQL
// pool with every connection taken.
func TestPoolStatsShowWaits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a, b := mkUser(t, db, "pool_a"), mkUser(t, db, "pool_b")
		writer := "sqlite_writer"
		if db.Dialect() == "postgres" {
			writer = "primary"
		}
		stat := func() store.PoolStat {
			for _, p := range db.PoolStats() {
				if p.Pool == writer {
					return p
				}
			}
			t.Fatalf("no pool %q in %+v", writer, db.PoolStats())
			return store.PoolStat{}
		}
		// idle waits up to 5 s for the pool to be idle and returns its
		// stats: on PostgreSQL a write that enqueued jobs (a follow does)
		// is followed by the job waker's NOTIFY on a pooled connection
		// of its own, after the write has returned (jobnotify.go). A
		// connection never given back fails the checks below.
		idle := func() store.PoolStat {
			st := stat()
			for deadline := time.Now().Add(5 * time.Second); st.InUse != 0 && time.Now().Before(deadline); st = stat() {
				time.Sleep(10 * time.Millisecond)
			}
			return st
		}
		before := idle()
		// (Opening a PostgreSQL connection is a wait too: a few may be
		// counted already.)
		if before.Max < 1 || before.InUse != 0 {
			t.Fatalf("idle pool: %+v", before)
		}
		// Hold the connections; a write then waits until they are given
		// back. A wait shows in the stats once it is over (PostgreSQL) or
		// as soon as it begins (SQLite): give the writer growing time to
		// start waiting until one was counted.
		for pause := 10 * time.Millisecond; stat().Waits == before.Waits; pause *= 2 {
			if pause > 5*time.Second {
				t.Fatalf("no wait counted: %+v", stat())
			}
			release, err := db.HoldWriter(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st := stat(); st.InUse != st.Max {
				t.Errorf("all connections held, stats say %+v", st)
			}
			done := make(chan error, 1)
			go func() { done <- db.Follow(context.Background(), a.ID, b.ID) }()
			time.Sleep(pause)
			release()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		after := idle()
		if after.WaitTime <= before.WaitTime || after.InUse != 0 {
			t.Errorf("after the wait: %+v", after)
		}
		if db.Dialect() == "postgres" && after.Acquires <= before.Acquires {
			t.Errorf("acquires not counted: before %+v after %+v", before, after)
		}
	})
}
