package store_test

import (
	"maps"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func TestFavoritesCounts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		author, u1, u2 := mkUser(t, db, "author"), mkUser(t, db, "u1"), mkUser(t, db, "u2")
		a, b, c := mkArticle(t, db, author, "a"), mkArticle(t, db, author, "b"), mkArticle(t, db, author, "c")
		for _, f := range []struct{ user, article int64 }{{u1.ID, a.ID}, {u2.ID, a.ID}, {u1.ID, c.ID}} {
			if _, err := db.Favorite(ctx, f.user, f.article, author.ID); err != nil {
				t.Fatal(err)
			}
		}
		const gone = 1 << 40 // no such article: left out
		got, err := db.FavoritesCounts(ctx, []int64{a.ID, b.ID, c.ID, gone})
		want := map[int64]int{a.ID: 2, b.ID: 0, c.ID: 1}
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("FavoritesCounts = %v, %v; want %v", got, err, want)
		}
		if got, err := db.FavoritesCounts(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("FavoritesCounts(nil) = %v, %v", got, err)
		}
	})
}
