package store_test

import (
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/seed"
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
