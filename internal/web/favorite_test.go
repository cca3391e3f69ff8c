package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A favorite button on a list comes back to the same preview (its id as
// the fragment), not to the top of the page.
func TestFavoriteFromListReturnsToThePreview(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		alice := s.browser().signUp("alice")
		for _, title := range []string{"One", "Two", "Three"} {
			alice.publish(title, "")
		}
		bob := s.browser().signUp("bob")
		list := bob.get("/?page=1")
		wantContains(t, list, `<article class="article-preview" id="article-two">`,
			`<input type="hidden" name="next" value="/?page=1#article-two">`)
		res := bob.post("/article/two/favorite", url.Values{"next": {"/?page=1#article-two"}})
		wantRedirect(t, res, "/?page=1#article-two")
		wantContains(t, bob.get("/"), `action="/article/two/unfavorite"`)
	})
}

// With JavaScript, the button is replaced in place: asked with the
// fragment header, a favorite answers the button for the new state (the
// same markup the page has), not a redirect.
func TestFavoriteFragment(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		alice := s.browser().signUp("alice")
		alice.publish("One", "")
		bob := s.browser().signUp("bob")
		send := func(action, style string) response {
			req := httptest.NewRequest(http.MethodPost, "/article/one/"+action, strings.NewReader(url.Values{"next": {"/#article-one"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			req.Header.Set(fragmentHeader, style)
			return bob.do(req)
		}
		res := send("favorite", "short")
		wantStatus(t, res, http.StatusOK)
		body := strings.TrimSpace(res.Body)
		if !strings.HasPrefix(body, `<form method="post" action="/article/one/unfavorite"`) || !strings.Contains(body, `aria-pressed="true"`) ||
			!strings.Contains(body, `value="/#article-one"`) || strings.Contains(body, "<html") {
			t.Errorf("favorite fragment:\n%s", body)
		}
		if res.Header.Get("Cache-Control") != "private, no-store" {
			t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
		}
		res = send("unfavorite", "long")
		wantContains(t, res, `action="/article/one/favorite"`, `Favorite Article <span class="counter">(0)</span>`)
		// An anonymous visitor gets the sign-in redirect, which app.js
		// answers by sending the form the plain way.
		req := httptest.NewRequest(http.MethodPost, "/article/one/favorite", nil)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set(fragmentHeader, "short")
		if got := s.browser().do(req); got.StatusCode != http.StatusSeeOther {
			t.Errorf("anonymous fragment request: %d", got.StatusCode)
		}
	})
}
