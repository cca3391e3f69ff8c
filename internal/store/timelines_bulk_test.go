package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// The bulk build (conduit seed) makes the timelines the jobs would: on a
// random dataset with no timeline (as loaded in bulk), every user's feed
// read from the timeline equals the feed read from the follows, page by
// page; and the jobs of later writes keep it so. (Small enough that
// every feed fits the 100 articles checkFeeds walks.)
func TestBuildTimelinesBulk(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil)
		seed := propertySeed(t)
		r := rand.New(rand.NewPCG(seed, 11))
		opts := conduit.FeedOptions{MaxFollowers: 4, TimelineCap: 6}
		h := conduit.NewJobs(db, opts)
		var users []conduit.User
		for i := range 12 {
			users = append(users, mkUser(t, db, fmt.Sprintf("u%d", i)))
		}
		// followers[v] is who follows v now, as the writes leave it.
		followers := map[int64]map[int64]bool{}
		write := func(n int) {
			for i := range n {
				u, v := users[r.IntN(len(users))], users[r.IntN(len(users))]
				if r.IntN(2) == 0 {
					v = users[r.IntN(3)] // popular: some become celebrities
				}
				switch x := r.IntN(100); {
				case x < 45:
					mkArticle(t, db, u, fmt.Sprintf("a%d-%d", n, i))
				case x < 85 && u.ID != v.ID:
					if err := db.Follow(ctx, u.ID, v.ID); err != nil {
						t.Fatal(err)
					}
					if followers[v.ID] == nil {
						followers[v.ID] = map[int64]bool{}
					}
					followers[v.ID][u.ID] = true
				case x < 95:
					if err := db.Unfollow(ctx, u.ID, v.ID); err != nil {
						t.Fatal(err)
					}
					delete(followers[v.ID], u.ID)
				}
			}
		}
		// Some seeds make no celebrity in 120 writes: go on until one
		// exists, which is what the test is about.
		celebrity := func() bool {
			for _, f := range followers {
				if len(f) > opts.MaxFollowers {
					return true
				}
			}
			return false
		}
		write(120)
		for i := 0; i < 10 && !celebrity(); i++ {
			write(20)
		}
		// As a bulk load leaves it: rows, no timeline, no job.
		if err := db.DropTimelines(ctx); err != nil {
			t.Fatal(err)
		}
		for {
			jobs, err := db.ClaimJobs(ctx, 1000, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) == 0 {
				break
			}
			for _, j := range jobs {
				if err := db.CompleteJobs(ctx, j.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		res, err := db.BuildTimelinesBulk(ctx, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Users != int64(len(users)) || res.Rows == 0 || res.Celebrities == 0 {
			t.Errorf("bulk build: %+v; want every user, some rows, some celebrities", res)
		}
		if missing, _ := db.UsersWithoutTimeline(ctx, 0, 100); len(missing) != 0 {
			t.Errorf("without timeline after the bulk build: %v", missing)
		}
		_, trimmed, err := db.TimelineShape(ctx)
		if err != nil || trimmed == 0 {
			t.Errorf("trimmed timelines %d (%v): the cap was never reached", trimmed, err)
		}
		if n := checkFeeds(t, db, users); n == 0 {
			t.Error("no page was read from a timeline")
		}
		// Only once: a second build would count over the first.
		if _, err := db.BuildTimelinesBulk(ctx, opts, nil); !errors.Is(err, store.ErrTimelinesExist) {
			t.Errorf("second bulk build: %v, want ErrTimelinesExist", err)
		}
		// Jobs carry on from what the bulk build made.
		write(50)
		runJobs(t, db, h, r, true)
		checkFeeds(t, db, users)
	})
}
