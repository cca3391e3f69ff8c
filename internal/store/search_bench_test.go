//go:build unix

package store_test

import (
	"fmt"
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
	benchSearch(b, db)
}

// BenchmarkSearchSeededPostgres is BenchmarkSearchSeeded on a seeded
// PostgreSQL database named by CONDUIT_BENCH_POSTGRES (a URL). The
// database's CPU is not this process's: cpu-ms/op is the client's part
// only, and the time per search is the figure to compare.
//
//	CONDUIT_BENCH_POSTGRES=postgres://… go test -run '^$' -bench SearchSeededPostgres ./internal/store
func BenchmarkSearchSeededPostgres(b *testing.B) {
	url := os.Getenv("CONDUIT_BENCH_POSTGRES")
	if url == "" {
		b.Skip("CONDUIT_BENCH_POSTGRES is not set: no seeded database to search")
	}
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	benchSearch(b, db)
}

// benchSearch runs searches of the seed's words: one, two, three and four
// common words and one without a match, first pages, the deepest page of
// the window (offset 980) for one and two words, and a page past the
// matches of a word without any (which counts them again).
func benchSearch(b *testing.B, db *store.DB) {
	for _, s := range []struct {
		text   string
		offset int
	}{
		{"stage", 0}, {"city", 0}, {"stage city", 0}, {"view argument", 0}, {"data base engine", 0},
		{"stage city river music", 0}, {"zebra", 0}, {"stage", 980}, {"stage city", 980}, {"zebra", 20},
	} {
		name := strings.ReplaceAll(s.text, " ", "_")
		if s.offset > 0 {
			name += fmt.Sprintf("@%d", s.offset)
		}
		b.Run(name, func(b *testing.B) {
			q, err := conduit.ParseSearch(s.text, 20, s.offset)
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
