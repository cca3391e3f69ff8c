package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// BenchmarkTimelineFeed reads the first page (20 articles) of a home feed
// from its timeline, merged with the celebrities the viewer follows, on a
// seeded database (scale 0.002) whose timelines were built in bulk with a
// low celebrity threshold. It is the store's part of GET
// /api/articles/feed; docs/stage7.md has the figures.
//
//	go test -run '^$' -bench TimelineFeed -benchtime 2000x ./internal/store
func BenchmarkTimelineFeed(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			db := be.Open(b)
			db.OnJobs(nil)
			storetest.Seed(b, db, seed.Options{Seed: 1, Scale: 0.002, PasswordHash: "x"})
			res, err := db.BuildTimelinesBulk(ctx, conduit.FeedOptions{MaxFollowers: 20, TimelineCap: 1000}, nil)
			if err != nil {
				b.Fatal(err)
			}
			if res.Celebrities == 0 {
				b.Fatalf("bulk build: %+v; want some celebrities", res)
			}
			f := conduit.ArticleFilter{Limit: 20}
			viewer := int64(0)
			for id := int64(1); id <= 200 && viewer == 0; id++ {
				if p, ok, err := db.TimelineFeed(ctx, id, f); err == nil && ok && len(p.Articles) == f.Limit {
					viewer = id
				}
			}
			if viewer == 0 {
				b.Fatal("no user among the first 200 has a full first page from a timeline")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, ok, err := db.TimelineFeed(ctx, viewer, f); err != nil || !ok {
					b.Fatalf("timeline feed: ok %v, %v", ok, err)
				}
			}
		})
	}
}

// BenchmarkFeedCelebrities is the feed in the shape of the full dataset,
// scaled down: a seed of scale 0.01 (10,000 users, 200,000 follows, the
// hundred most followed at ~100–2,000 followers) with the celebrity
// threshold at 100 followers, so that ~the same hundred authors are
// celebrities as at full scale with the default 10,000, and viewers who
// follow 8–18 of them, as the benchmark's signed-in users do. Each page is
// read by Feed, as the route does.
//
// "commits" writes one row between pages, so that every reader connection
// finds its page cache emptied (WAL), as under the mix's ~35 commits a
// second: then a page costs about the pages its statements touch. "quiet"
// writes nothing. "read" is the page as before celebCache (and as on
// PostgreSQL): the state statement probes the follows once per celebrity
// and the page statement reads each followed celebrity's newest ids from
// articles_author_idx; "kept" takes the followed celebrities from the
// viewer's follows and their ids from the cache. cpu-µs/op is the
// process's CPU (user and system) over the feed reads alone.
//
//	go test -run '^$' -bench FeedCelebrities -benchtime 3000x ./internal/store
func BenchmarkFeedCelebrities(b *testing.B) {
	db := storetest.OpenSQLite(b)
	db.OnJobs(nil)
	storetest.Seed(b, db, seed.Options{Seed: 1, Scale: 0.01, PasswordHash: "x"})
	res, err := db.BuildTimelinesBulk(ctx, conduit.FeedOptions{MaxFollowers: 100, TimelineCap: 1000}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var viewers []int64
	for id := int64(1); id <= 10_000 && len(viewers) < 20; id++ {
		n, err := db.CelebritiesFollowed(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if n >= 8 && n <= 18 {
			viewers = append(viewers, id)
		}
	}
	if len(viewers) < 20 {
		b.Fatalf("%d viewers follow 8–18 of the %d celebrities; want 20", len(viewers), res.Celebrities)
	}
	if err := db.Exec(ctx, `CREATE TABLE bench_commits (n INTEGER)`); err != nil {
		b.Fatal(err)
	}
	// The bulk load left its pages in the WAL, where every read would
	// look them up; a server's WAL is checkpointed as it goes.
	if err := db.Exec(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d celebrities; viewers %v", res.Celebrities, viewers)
	for _, writes := range []bool{false, true} {
		for _, page := range []conduit.ArticleFilter{{Limit: 20}, {Limit: 20, Offset: 40}} {
			for _, kept := range []bool{false, true} {
				name := fmt.Sprintf("quiet/offset=%d", page.Offset)
				if writes {
					name = fmt.Sprintf("commits/offset=%d", page.Offset)
				}
				name += map[bool]string{false: "/read", true: "/kept"}[kept]
				db.KeepCelebrities(kept)
				b.Run(name, func(b *testing.B) { benchFeed(b, db, viewers, page, writes) })
			}
		}
	}
}

func benchFeed(b *testing.B, db *store.DB, viewers []int64, f conduit.ArticleFilter, writes bool) {
	var cpu time.Duration
	i := 0
	for b.Loop() {
		if writes {
			b.StopTimer()
			if err := db.Exec(ctx, `INSERT INTO bench_commits (n) VALUES (?)`, i); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		before := cpuTime(b)
		p, err := db.Feed(ctx, viewers[i%len(viewers)], f)
		cpu += cpuTime(b) - before
		if err != nil || len(p.Articles) != f.Limit {
			b.Fatalf("feed of %d: %d articles, %v", viewers[i%len(viewers)], len(p.Articles), err)
		}
		i++
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(i), "cpu-µs/op")
}
