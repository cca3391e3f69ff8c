package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// getWithFlash loads path carrying the flash cookie value (as the browser
// would after the redirect that set it).
func (b *browser) getWithFlash(path, value string) response {
	b.s.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(&http.Cookie{Name: flashCookie, Value: value})
	return b.do(req)
}

// After sign-up, publishing, saving settings and commenting, the next page
// says so once; the cookie carries a code, so a forged one shows nothing.
func TestFlashMessages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser()
		follow := func(res response, code, message string) {
			t.Helper()
			c := cookieOf(res, flashCookie)
			if c == nil || c.Value != code || !c.HttpOnly {
				t.Fatalf("%s %s: flash cookie %+v, want %q", res.Request.Method, res.Request.URL, c, code)
			}
			page := b.getWithFlash(res.Header.Get("Location"), c.Value)
			wantContains(t, page, `<p class="flash" role="status">`+message+`</p>`)
			if cleared := cookieOf(page, flashCookie); cleared == nil || cleared.MaxAge >= 0 {
				t.Errorf("flash cookie not cleared: %+v", cleared)
			}
			if cc := page.Header.Get("Cache-Control"); cc != "private, no-store" {
				t.Errorf("page with a flash: Cache-Control %q", cc)
			}
		}
		follow(b.post("/register", url.Values{"username": {"alice"}, "email": {"alice@example.com"}, "password": {"password-alice"}}),
			"welcome", "Welcome to Conduit! Your account is ready.")
		res := b.post("/editor", url.Values{"title": {"Hello"}, "description": {"d"}, "body": {"b"}})
		follow(res, "published", "Your article is published.")
		follow(b.post("/editor/hello", url.Values{"title": {"Hello"}, "description": {"d2"}, "body": {"b"}}),
			"updated", "Your article is updated.")
		follow(b.post("/article/hello/comments", url.Values{"body": {"first"}}), "comment", "Your comment is posted.")
		follow(b.post("/settings", url.Values{"username": {"alice"}, "email": {"alice@example.com"}, "bio": {"hi"}}),
			"settings", "Your settings are saved.")
		follow(b.post("/article/hello/delete", url.Values{}), "deleted", "Your article is deleted.")

		// Nothing shows without the cookie; a forged value shows nothing
		// and is cleared; markup in it never reaches the page.
		wantNotContains(t, b.get("/"), `class="flash"`)
		forged := b.getWithFlash("/", "<script>alert(1)</script>")
		wantNotContains(t, forged, `class="flash"`, "<script>alert")
		if c := cookieOf(forged, flashCookie); c == nil || c.MaxAge >= 0 {
			t.Errorf("forged flash cookie not cleared")
		}
		// An anonymous page with a flash is not kept for other visitors.
		anon := s.browser()
		anon.getWithFlash("/", "deleted")
		wantNotContains(t, anon.get("/"), `class="flash"`)
	})
}
