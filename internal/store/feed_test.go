package store_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// The feed has two plans (per followee, or newest first over a bounded
// window of ids, with a fallback when the window is too short). Whichever
// runs, every page by offset and every page by cursor equals the same
// slice of the full feed computed by hand.
func TestFeedPlansAgree(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		me, prolific, quiet, other := mkUser(t, db, "me"), mkUser(t, db, "prolific"), mkUser(t, db, "quiet"), mkUser(t, db, "other")
		// quiet wrote early; then prolific writes most articles (so the
		// window plan is chosen for heavy readers), with other's newer
		// articles at the end (so a short window finds nothing and falls back).
		var quietFeed, prolificFeed []string // newest first
		for i := range 10 {
			quietFeed = append([]string{mkArticle(t, db, quiet, fmt.Sprintf("q%d", i)).Slug}, quietFeed...)
		}
		for i := range 150 {
			prolificFeed = append([]string{mkArticle(t, db, prolific, fmt.Sprintf("p%d", i)).Slug}, prolificFeed...)
			if i%10 == 0 {
				mkArticle(t, db, other, fmt.Sprintf("o%d", i))
			}
		}
		for i := range 60 {
			mkArticle(t, db, other, fmt.Sprintf("late%d", i))
		}
		check := func(t *testing.T, viewer conduit.User, want []string) {
			t.Helper()
			for _, limit := range []int{1, 3, 20} {
				for _, offset := range []int{0, 1, 7, 40, 150, 200} {
					page, err := db.Feed(ctx, viewer.ID, conduit.ArticleFilter{Limit: limit, Offset: offset})
					if err != nil {
						t.Fatal(err)
					}
					exp := want[min(offset, len(want)):min(offset+limit, len(want))]
					if !slices.Equal(slugs(page.Articles), exp) || page.Count != len(want) {
						t.Errorf("limit %d offset %d: %v (%d), want %v (%d)", limit, offset, slugs(page.Articles), page.Count, exp, len(want))
					}
					if more := offset+limit < len(want); (page.Next != 0) != more {
						t.Errorf("limit %d offset %d: next = %d, more follow: %v", limit, offset, page.Next, more)
					}
				}
				var got []string
				f := conduit.ArticleFilter{Limit: limit}
				for range len(want) + 2 {
					page, err := db.Feed(ctx, viewer.ID, f)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, slugs(page.Articles)...)
					if page.Next == 0 {
						break
					}
					f.Before = page.Next
				}
				if !slices.Equal(got, want) {
					t.Errorf("limit %d: cursor walk = %v, want %v", limit, got, want)
				}
			}
		}
		if err := db.Follow(ctx, me.ID, prolific.ID); err != nil {
			t.Fatal(err)
		}
		t.Run("prolific followee", func(t *testing.T) { check(t, me, prolificFeed) })
		if err := db.Follow(ctx, me.ID, quiet.ID); err != nil {
			t.Fatal(err)
		}
		t.Run("prolific and quiet followees", func(t *testing.T) { check(t, me, append(slices.Clone(prolificFeed), quietFeed...)) })
		if err := db.Unfollow(ctx, me.ID, prolific.ID); err != nil {
			t.Fatal(err)
		}
		t.Run("quiet followee only", func(t *testing.T) { check(t, me, quietFeed) })
	})
}
