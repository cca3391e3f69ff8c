package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Metrics and logs name the page's route even though the session and CSRF
// middleware copy the request before the mux matches it.
func TestLogSeesMatchedRoute(t *testing.T) {
	t.Parallel()
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

// The routes wrapped in signedIn send an anonymous visitor to sign in and
// come back to the right page, without running the handler (the GETs and
// the first form posts are in TestAnonymousIsSentToLogin).
func TestSignedInRoutesComeBack(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		a := s.browser().signUp("erin")
		slug := a.publish("Erin's post", "")
		wantRedirect(t, a.post("/article/"+slug+"/comments", url.Values{"body": {"kept"}}), "/article/"+slug+"#comments")
		del := deleteCommentRE.FindStringSubmatch(a.get("/article/" + slug).Body)
		if del == nil {
			t.Fatal("no delete button for own comment")
		}

		anon := s.browser()
		for _, tt := range []struct {
			path string
			form url.Values
			want string
		}{
			{"/editor/" + slug, url.Values{"title": {"Hacked"}, "description": {"x"}, "body": {"x"}}, "/login?next=%2Feditor%2F" + slug},
			{"/article/" + slug + "/favorite", url.Values{"next": {"/?page=2"}}, "/login?next=%2F%3Fpage%3D2"},
			{"/article/" + slug + "/unfavorite", url.Values{"next": {"//evil.example/"}}, "/login?next=%2Farticle%2F" + slug},
			{del[1], nil, "/login?next=%2Farticle%2F" + slug},
			{"/profile/erin/unfollow", url.Values{"next": {"/profile/erin/favorites"}}, "/login?next=%2Fprofile%2Ferin%2Ffavorites"},
			{"/profile/erin/follow", url.Values{"next": {"https://evil.example/"}}, "/login?next=%2Fprofile%2Ferin"},
		} {
			wantRedirect(t, anon.post(tt.path, tt.form), tt.want)
		}
		res := anon.get("/article/" + slug)
		wantContains(t, res, "<h1>Erin&#39;s post</h1>", "kept")
		if a := mustArticles(t, s); len(a) != 1 || a[0].FavoritesCount != 0 {
			t.Errorf("anonymous posts changed data: %+v", a)
		}
	})
}
