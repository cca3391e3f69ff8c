package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// fuzzSite is the whole site on SQLite with a user who has written an
// article and a comment, for the fuzz tests.
type fuzzSite struct {
	h      http.Handler
	svc    *conduit.Service
	tokens *auth.Tokens
	userID int64
	slug   string
}

func newFuzzSite(f *testing.F) *fuzzSite {
	ctx := context.Background()
	db := storetest.OpenSQLite(f)
	tokens, err := auth.NewTokens([]auth.Key{{ID: "test", Secret: []byte(strings.Repeat("k", 32))}}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	svc := conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
	u, err := svc.Register(ctx, conduit.NewUser{Username: "fuzzer", Email: "fuzzer@example.com", Password: "password-fuzzer"})
	if err != nil {
		f.Fatal(err)
	}
	a, err := svc.CreateArticle(ctx, u.ID, conduit.NewArticle{Title: "Fuzzed", Description: "d", Body: "*b*", Tags: []string{"go"}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.AddComment(ctx, u.ID, a.Slug, "a comment"); err != nil {
		f.Fatal(err)
	}
	h := New(svc, tokens, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	return &fuzzSite{h: h, svc: svc, tokens: tokens, userID: u.ID, slug: a.Slug}
}

// serve answers r, signed in as the fuzz user when signedIn (with a token
// of the user's current generation: an input may have changed the
// password or signed out everywhere), and fails t on a 5xx.
func (s *fuzzSite) serve(t *testing.T, r *http.Request, signedIn bool) {
	if signedIn {
		u, err := s.svc.User(context.Background(), s.userID)
		if err != nil {
			t.Fatal(err)
		}
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: s.tokens.Issue(s.userID, u.TokenGen)})
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, r)
	if rec.Code >= 500 {
		t.Fatalf("%s %q ? %q: %d %.300s", r.Method, r.URL.Path, r.URL.RawQuery, rec.Code, rec.Body)
	}
}

// fuzzFormPaths are the paths of the site's forms; {slug} is the fuzz
// user's article.
var fuzzFormPaths = []string{"/login", "/register", "/logout", "/logout-everywhere", "/settings", "/editor",
	"/editor/{slug}", "/article/{slug}/delete", "/article/{slug}/favorite", "/article/{slug}/unfavorite",
	"/article/{slug}/comments", "/article/{slug}/comments/1/delete", "/profile/fuzzer/follow", "/profile/fuzzer/unfollow"}

// fuzzContentTypes are what FuzzSiteForm declares its bodies as.
var fuzzContentTypes = []string{"application/x-www-form-urlencoded", "", "multipart/form-data; boundary=b",
	"text/plain", "application/x-www-form-urlencoded; charset=utf-16"}

// FuzzSiteForm posts arbitrary bodies to every form of the site, as any
// content type, signed in or not (seed corpus in testdata/fuzz/FuzzSiteForm):
// whatever the form parser and the handlers make of them, the answer is
// never a 5xx.
func FuzzSiteForm(f *testing.F) {
	s := newFuzzSite(f)
	f.Fuzz(func(t *testing.T, form uint8, ctype uint8, body []byte, signedIn bool) {
		path := strings.ReplaceAll(fuzzFormPaths[int(form)%len(fuzzFormPaths)], "{slug}", s.slug)
		r := httptest.NewRequest("POST", path, bytes.NewReader(body))
		if ct := fuzzContentTypes[int(ctype)%len(fuzzContentTypes)]; ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		s.serve(t, r, signedIn)
	})
}

// FuzzSiteRequest sends the site requests with an arbitrary method, path
// and query string, signed in or not (seed corpus in
// testdata/fuzz/FuzzSiteRequest: every page with the fixture's values and
// its query parameters): the answer is never a 5xx.
func FuzzSiteRequest(f *testing.F) {
	s := newFuzzSite(f)
	methods := []string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"}
	f.Fuzz(func(t *testing.T, method uint8, path, query string, signedIn bool) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Method = methods[int(method)%len(methods)]
		r.URL.Path, r.URL.RawQuery = "/"+strings.ReplaceAll(path, "{slug}", s.slug), query
		s.serve(t, r, signedIn)
	})
}

// FuzzSafeNext checks where the site may send a visitor after signing in
// (seed corpus in testdata/fuzz/FuzzSafeNext): either the path asked for,
// or "/"; never another site, however the address is spelled.
func FuzzSafeNext(f *testing.F) {
	base, _ := url.Parse("https://conduit.example/login")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("safeNext(%q) = %q, not a path on this site", next, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("safeNext(%q) = %q, which does not parse: %v", next, got, err)
		}
		if to := base.ResolveReference(u); to.Host != base.Host || to.Scheme != base.Scheme || to.User != nil {
			t.Fatalf("safeNext(%q) = %q leads to %s", next, got, to)
		}
	})
}
