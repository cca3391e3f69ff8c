package conduit_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// listCounter counts the list queries that reach the store.
type listCounter struct {
	conduit.Store
	lists atomic.Int64
}

func (s *listCounter) ListArticles(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	s.lists.Add(1)
	return s.Store.ListArticles(ctx, viewerID, f)
}

// Anonymous first pages are served from memory, and every write on this
// node that changes what they show is visible on the next read.
func TestAnonymousFirstPagesCached(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &listCounter{Store: db}
		svc := conduit.NewService(st, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		ann := mustRegister(t, svc, "ann")
		bob := mustRegister(t, svc, "bob")
		first := mustCreate(t, svc, ann.ID, "First", "go")

		list := func(f conduit.ArticleFilter) conduit.ArticlePage {
			t.Helper()
			p, err := svc.Articles(ctx, 0, f)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		global := conduit.ArticleFilter{}
		list(global)
		n := st.lists.Load()
		if p := list(global); p.Count != 1 || st.lists.Load() != n {
			t.Fatalf("second anonymous first page: count %d, store queried %d times more", p.Count, st.lists.Load()-n)
		}
		// Signed-in viewers and later pages always reach the store.
		for _, q := range []func(){
			func() { svc.Articles(ctx, bob.ID, global) },
			func() { list(conduit.ArticleFilter{Offset: 1}) },
		} {
			n := st.lists.Load()
			q()
			q()
			if st.lists.Load() != n+2 {
				t.Error("a signed-in or later page was served from the list cache")
			}
		}

		// Each write shows on the next anonymous read.
		second := mustCreate(t, svc, bob.ID, "Second", "go")
		if p := list(global); p.Count != 2 || p.Articles[0].Slug != second.Slug {
			t.Fatalf("after create: %d articles, first %q", p.Count, p.Articles[0].Slug)
		}
		if _, err := svc.Favorite(ctx, bob.ID, first.Slug); err != nil {
			t.Fatal(err)
		}
		if p := list(global); p.Articles[1].FavoritesCount != 1 {
			t.Errorf("after favorite: favoritesCount %d", p.Articles[1].FavoritesCount)
		}
		if p := list(conduit.ArticleFilter{FavoritedBy: "bob"}); p.Count != 1 {
			t.Errorf("bob's favorites after favorite: %d", p.Count)
		}
		if _, err := svc.Unfavorite(ctx, bob.ID, first.Slug); err != nil {
			t.Fatal(err)
		}
		if p := list(conduit.ArticleFilter{FavoritedBy: "bob"}); p.Count != 0 {
			t.Errorf("bob's favorites after unfavorite: %d", p.Count)
		}
		if _, err := svc.UpdateUser(ctx, ann.ID, conduit.UserPatch{Image: ptr("https://example.com/a.png")}); err != nil {
			t.Fatal(err)
		}
		if p := list(global); p.Articles[1].Author.Image != "https://example.com/a.png" {
			t.Errorf("after profile change: author image %q", p.Articles[1].Author.Image)
		}
		if _, err := svc.UpdateArticle(ctx, bob.ID, second.Slug, conduit.ArticlePatch{Title: ptr("Renamed")}); err != nil {
			t.Fatal(err)
		}
		if p := list(conduit.ArticleFilter{Tag: "go"}); p.Articles[0].Title != "Renamed" {
			t.Errorf("after edit: title %q", p.Articles[0].Title)
		}
		if err := svc.DeleteArticle(ctx, bob.ID, "renamed"); err != nil {
			t.Fatal(err)
		}
		if p := list(global); p.Count != 1 {
			t.Errorf("after delete: %d articles", p.Count)
		}
	})
}
