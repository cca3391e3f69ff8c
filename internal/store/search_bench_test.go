//go:build unix

package store_test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
)

// BenchmarkSearchSeeded runs SearchArticles (first page, 20 articles) on
// a seeded SQLite database named by CONDUIT_BENCH_SQLITE, e.g. a copy of a
// full-size `conduit seed` (the seed's words are each in ~17% of the
// articles, so every search has a full window). The database is opened as
// the server opens it; only reads run. Besides the time per search it
// reports the process's CPU time per search (cpu-ms/op), which a machine
// shared with other work disturbs less. docs/performance.md has the
// figures.
//
//	CONDUIT_BENCH_SQLITE=/path/conduit.db go test -run '^$' -bench SearchSeeded ./internal/store
func BenchmarkSearchSeeded(b *testing.B) {
	path := os.Getenv("CONDUIT_BENCH_SQLITE")
	if path == "" {
		b.Skip("CONDUIT_BENCH_SQLITE is not set: no seeded database to search")
	}
	if _, err := os.Stat(path); err != nil {
		b.Fatal(err)
	}
	db, err := store.OpenSQLite(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	for _, text := range []string{"stage", "city", "stage city", "view argument", "data base engine", "stage city river music", "zebra"} {
		b.Run(strings.ReplaceAll(text, " ", "_"), func(b *testing.B) {
			q, err := conduit.ParseSearch(text, 20, 0)
			if err != nil {
				b.Fatal(err)
			}
			start := cpuTime(b)
			for b.Loop() {
				if _, err := db.SearchArticles(ctx, 0, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
