package web

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A title change gives the article a new slug; the old address answers a
// permanent redirect to the new one, and no other article can take the
// old slug while this one exists. Deleting the article makes every one of
// its addresses a 404.
func TestOldSlugsRedirect(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		alice := s.browser().signUp("alice")
		old := alice.publish("First title", "")
		res := alice.post("/editor/"+old, url.Values{"title": {"Second title"}, "description": {"d"}, "body": {"b"}, "tags": {""}})
		wantRedirect(t, res, "/article/second-title")

		visitor := s.browser()
		res = visitor.get("/article/" + old)
		if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/article/second-title" {
			t.Fatalf("old slug: %d Location %q, want 301 to /article/second-title", res.StatusCode, res.Header.Get("Location"))
		}
		wantStatus(t, visitor.get("/article/second-title"), http.StatusOK)

		// The old slug stays this article's: a new article with the old
		// title gets another one.
		if other := alice.publish("First title", ""); other == old {
			t.Fatalf("a new article took the old slug %q", old)
		}
		// Back to the first title: its own old slug is its slug again.
		res = alice.post("/editor/second-title", url.Values{"title": {"First title"}, "description": {"d"}, "body": {"b"}, "tags": {""}})
		wantRedirect(t, res, "/article/"+old)
		res = visitor.get("/article/second-title")
		if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/article/"+old {
			t.Fatalf("second slug: %d Location %q, want 301 to /article/%s", res.StatusCode, res.Header.Get("Location"), old)
		}

		// Actions through an old address act on the article.
		bob := s.browser().signUp("bob")
		wantRedirect(t, bob.post("/article/second-title/favorite", url.Values{}), "/article/second-title")
		wantContains(t, bob.get("/article/"+old), "Unfavorite Article")

		wantRedirect(t, alice.post("/article/second-title/delete", url.Values{}), "/")
		for _, p := range []string{"/article/" + old, "/article/second-title"} {
			wantStatus(t, visitor.get(p), http.StatusNotFound)
		}
	})
}
