package conduit_test

import (
	"context"
	"testing"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A signed-in viewer's first page is the kept anonymous page with the
// viewer's own marks: no list read, the marks of this viewer only, current
// after the viewer's writes, and the kept page left without them.
func TestSignedInFirstPageMarks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &storetest.ListCounter{Store: db}
		svc := conduit.NewService(st, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		ann := mustRegister(t, svc, "ann")
		bob := mustRegister(t, svc, "bob")
		cat := mustRegister(t, svc, "cat")
		byAnn := mustCreate(t, svc, ann.ID, "By Ann", "go")
		byBob := mustCreate(t, svc, bob.ID, "By Bob", "go")

		// marks returns, per slug, the favorited flag and the author's
		// following flag as viewer sees the list f.
		marks := func(viewer int64, f conduit.ArticleFilter) map[string][2]bool {
			t.Helper()
			p, err := svc.Articles(ctx, viewer, f)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string][2]bool{}
			for _, a := range p.Articles {
				m[a.Slug] = [2]bool{a.Favorited, a.Author.Following}
			}
			return m
		}
		for _, f := range []conduit.ArticleFilter{{}, {Tag: "go"}} {
			marks(0, f) // kept
			if _, err := svc.Favorite(ctx, cat.ID, byAnn.Slug); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Follow(ctx, cat.ID, "bob"); err != nil {
				t.Fatal(err)
			}
			n := st.Lists()
			got := marks(cat.ID, f)
			if got[byAnn.Slug] != [2]bool{true, false} || got[byBob.Slug] != [2]bool{false, true} {
				t.Errorf("%+v: cat sees %v; want By Ann favorited, Bob followed", f, got)
			}
			if st.Lists() != n {
				t.Errorf("%+v: cat's first page read the list from the store (%d reads)", f, st.Lists()-n)
			}
			if got := marks(ann.ID, f); got[byAnn.Slug] != [2]bool{} || got[byBob.Slug] != [2]bool{} {
				t.Errorf("%+v: ann sees cat's marks: %v", f, got)
			}
			if got := marks(0, f); got[byAnn.Slug] != [2]bool{} || got[byBob.Slug] != [2]bool{} {
				t.Errorf("%+v: an anonymous visitor sees marks after cat's read: %v", f, got)
			}
			if _, err := svc.Unfavorite(ctx, cat.ID, byAnn.Slug); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Unfollow(ctx, cat.ID, "bob"); err != nil {
				t.Fatal(err)
			}
			if got := marks(cat.ID, f); got[byAnn.Slug] != [2]bool{} || got[byBob.Slug] != [2]bool{} {
				t.Errorf("%+v: cat's marks after unfavorite and unfollow: %v", f, got)
			}
		}
	})
}
