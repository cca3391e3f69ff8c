package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Metrics and logs name the page's route even though the session and CSRF
// middleware copy the request before the mux matches it.
func TestLogSeesMatchedRoute(t *testing.T) {
	s := newSite(t, storetest.OpenSQLite(t), Options{})
	b := s.browser().signUp("routes")
	var got string
	logged := httpx.Log(slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(r *http.Request, status int, _ time.Duration) { got = r.Pattern })(s.handler)

	for path, want := range map[string]string{
		"/":                  "GET /{$}",
		"/profile/routes":    "GET /profile/{username}",
		"/settings":          "GET /settings",
		"/article/not-there": "GET /article/{slug}",
	} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: b.session})
		logged.ServeHTTP(httptest.NewRecorder(), req)
		if got != want {
			t.Errorf("GET %s: route %q, want %q", path, got, want)
		}
	}
}
