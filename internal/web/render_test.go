package web

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// savingStore counts the renderings stored.
type savingStore struct {
	conduit.Store
	saves atomic.Int64
}

func (s *savingStore) SetArticleHTML(ctx context.Context, id int64, body, html string, version int) error {
	s.saves.Add(1)
	return s.Store.SetArticleHTML(ctx, id, body, html, version)
}

// Issue 9.6: the body was rendered on every view. It is rendered on the
// first view of each version of an article and stored with it; later
// views, on this node or another, use the stored HTML; an edit renders
// again once.
func TestArticleBodyIsRenderedOncePerVersion(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		counted := &savingStore{Store: db}
		node := func() (*site, *conduit.Service) { // a node, with its own cache
			s := newSite(t, counted, Options{})
			return s, s.svc
		}
		one, svc := node()
		u, err := svc.Register(context.Background(), conduit.NewUser{Username: "writer", Email: "writer@example.com", Password: "password-w"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := svc.CreateArticle(context.Background(), u.ID, conduit.NewArticle{Title: "Once", Description: "d", Body: "Hello *world*"})
		if err != nil {
			t.Fatal(err)
		}
		view := func(s *site, want string) {
			t.Helper()
			res := s.browser().get("/article/" + a.Slug)
			wantStatus(t, res, http.StatusOK)
			wantContains(t, res, want)
		}
		for range 5 {
			view(one, "<p>Hello <em>world</em></p>")
		}
		if n := counted.saves.Load(); n != 1 {
			t.Fatalf("%d renderings stored after 5 views, want 1", n)
		}
		stored, err := db.ArticleBySlug(context.Background(), 0, a.Slug)
		if err != nil || stored.BodyHTMLVersion != markdownVersion || !strings.Contains(stored.BodyHTML, "<em>world</em>") {
			t.Fatalf("stored rendering %q (version %d), %v", stored.BodyHTML, stored.BodyHTMLVersion, err)
		}
		two, _ := node()
		view(two, "<p>Hello <em>world</em></p>")
		if n := counted.saves.Load(); n != 1 {
			t.Fatalf("another node rendered again: %d renderings stored", n)
		}

		// A newer renderer's output (a node upgraded first) is shown as is.
		if err := db.SetArticleHTML(context.Background(), a.ID, a.Body, "<p>newer</p>", markdownVersion+1); err != nil {
			t.Fatal(err)
		}
		three, _ := node()
		view(three, "<p>newer</p>")

		body := "Hello **again**"
		if _, err := svc.UpdateArticle(context.Background(), u.ID, a.Slug, conduit.ArticlePatch{Body: &body}); err != nil {
			t.Fatal(err)
		}
		view(one, "<p>Hello <strong>again</strong></p>")
		view(one, "<p>Hello <strong>again</strong></p>")
		if n := counted.saves.Load(); n != 2 {
			t.Fatalf("%d renderings stored after an edit, want 2", n)
		}
	})
}
