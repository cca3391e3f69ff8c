package store_test

import (
	"fmt"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// BenchmarkFanOut is one worker's fan-out of an article to its author's
// 1,000 followers, all with timelines (an author just under the default
// celebrity threshold's tenth): one feed.publish job, as the worker runs it.
// It reports timeline inserts/s. docs/stage7.md has the figures.
//
//	go test -run '^$' -bench FanOut -benchtime 20x ./internal/store
func BenchmarkFanOut(b *testing.B) {
	const followers = 1000
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			db := be.Open(b)
			db.OnJobs(nil)
			opts := conduit.FeedOptions{MaxFollowers: 10000, TimelineCap: 1000}
			author := mkUser(b, db, "author")
			for i := range followers {
				f := mkUser(b, db, fmt.Sprintf("f%d", i))
				if err := db.Follow(ctx, f.ID, author.ID); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				a := mkArticle(b, db, author, fmt.Sprintf("a%d", i))
				b.StartTimer()
				if err := db.FanOut(ctx, a.ID, author.ID, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(followers*b.N)/b.Elapsed().Seconds(), "inserts/s")
		})
	}
}
