package conduit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// ArticleForEdit is where "only the author may change an article" is
// decided, for the API's writes and the site's editor alike.
func TestArticleForEdit(t *testing.T) {
	t.Parallel()
	eachService(t, func(t *testing.T, svc *conduit.Service, _ statsCache) {
		ctx := context.Background()
		alice, bob := mustRegister(t, svc, "alice"), mustRegister(t, svc, "bob")
		art := mustCreate(t, svc, alice.ID, "Hers", "x")
		if _, err := svc.Favorite(ctx, alice.ID, art.Slug); err != nil {
			t.Fatal(err)
		}

		got, err := svc.ArticleForEdit(ctx, alice.ID, art.Slug)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != art.ID || got.Title != "Hers" || got.Author.ID != alice.ID || len(got.Tags) != 1 || got.Tags[0] != "x" {
			t.Errorf("author's article = %+v", got)
		}
		for name, viewer := range map[string]int64{"another user": bob.ID, "anonymous": 0} {
			if _, err := svc.ArticleForEdit(ctx, viewer, art.Slug); !errors.Is(err, conduit.ErrForbidden) {
				t.Errorf("%s: err = %v, want ErrForbidden", name, err)
			}
		}
		if _, err := svc.ArticleForEdit(ctx, alice.ID, "no-such-article"); !errors.Is(err, conduit.ErrNotFound) {
			t.Errorf("unknown slug: err = %v, want ErrNotFound", err)
		}

		// The update's answer still shows the author's own favorite.
		up, err := svc.UpdateArticle(ctx, alice.ID, art.Slug, conduit.ArticlePatch{Body: ptr("new")})
		if err != nil {
			t.Fatal(err)
		}
		if !up.Favorited || up.FavoritesCount != 1 || up.Body != "new" || up.Author.Following {
			t.Errorf("updated article = %+v, want favorited by its author, count 1, body new", up)
		}
	})
}

// An anonymous viewer has no feed; the site turns this into a sign-in.
func TestFeedNeedsUser(t *testing.T) {
	t.Parallel()
	eachService(t, func(t *testing.T, svc *conduit.Service, _ statsCache) {
		if _, err := svc.Feed(context.Background(), 0, conduit.ArticleFilter{}); !errors.Is(err, conduit.ErrUnauthenticated) {
			t.Errorf("anonymous feed: err = %v, want ErrUnauthenticated", err)
		}
		u := mustRegister(t, svc, "reader")
		if p, err := svc.Feed(context.Background(), u.ID, conduit.ArticleFilter{}); err != nil || p.Count != 0 {
			t.Errorf("empty feed = %+v, %v", p, err)
		}
	})
}
