package web

import (
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

var formTokenRE = regexp.MustCompile(`name="form_token" value="([A-Z2-7]+)"`)

// formToken returns the first one-time token on the page at path.
func (b *browser) formToken(path string) string {
	b.s.t.Helper()
	m := formTokenRE.FindStringSubmatch(b.get(path).Body)
	if m == nil {
		b.s.t.Fatalf("%s: no form token", path)
	}
	return m[1]
}

// A form sent twice with its one-time token is applied once, and the
// repeat gets the first answer: the same redirect and confirmation.
func TestFormsApplyOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{Forms: db})
		alice := s.browser().signUp("alice")
		ctx := t.Context()

		form := url.Values{"title": {"Only once"}, "description": {"d"}, "body": {"b"}, "tags": {"x"},
			"form_token": {alice.formToken("/editor")}}
		first := alice.post("/editor", form)
		second := alice.post("/editor", form)
		wantRedirect(t, first, "/article/only-once")
		wantRedirect(t, second, "/article/only-once")
		if c := cookieOf(second, flashCookie); c == nil || c.Value != "published" {
			t.Errorf("repeat: flash cookie %v, want published", c)
		}
		if l, _ := s.svc.Articles(ctx, 0, conduit.ArticleFilter{}); l.Count != 1 {
			t.Errorf("%d articles after a repeated publish, want 1", l.Count)
		}

		// The same token with other content is refused, not applied.
		form.Set("title", "Something else")
		wantStatus(t, alice.post("/editor", form), http.StatusConflict)

		// A form sent back with errors applied nothing: its token may be
		// sent again once the form is right.
		bad := url.Values{"title": {""}, "description": {"d"}, "body": {"b"}, "form_token": {alice.formToken("/editor")}}
		wantStatus(t, alice.post("/editor", bad), http.StatusUnprocessableEntity)
		bad.Set("title", "Fixed")
		wantRedirect(t, alice.post("/editor", bad), "/article/fixed")

		// Comments: a double click (both requests at once) posts one.
		comment := url.Values{"body": {"Nice"}, "form_token": {alice.formToken("/article/only-once")}}
		var wg sync.WaitGroup
		res := make([]response, 2)
		for i := range res {
			wg.Go(func() { res[i] = alice.post("/article/only-once/comments", comment) })
		}
		wg.Wait()
		for _, r := range res {
			wantRedirect(t, r, "/article/only-once#comments")
		}
		if cs, _ := s.svc.Comments(ctx, 0, "only-once", conduit.CommentFilter{}); len(cs.Comments) != 1 {
			t.Errorf("%d comments after a double click, want 1", len(cs.Comments))
		}

		// Tokens are per user: bob sending alice's token applies his own.
		bob := s.browser().signUp("bob")
		wantRedirect(t, bob.post("/article/only-once/comments", comment), "/article/only-once#comments")
		if cs, _ := s.svc.Comments(ctx, 0, "only-once", conduit.CommentFilter{}); len(cs.Comments) != 2 {
			t.Errorf("%d comments, want 2", len(cs.Comments))
		}
	})
}

// cookieOf returns the cookie name set by res, or nil.
func cookieOf(res response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}
