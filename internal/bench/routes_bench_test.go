package bench_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/server"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/web"
)

// BenchmarkRoutes serves the hottest routes of the full mix (conduit bench
// --mix full: article, home and tag pages, the API's article and list) and
// a few signed-in variants in process, through the same middleware as
// `conduit serve` (server.New: logging, metrics, limiter), over a seeded
// SQLite database. Its allocs/op are the allocations per request:
//
//	go test ./internal/bench -run '^$' -bench Routes -benchmem
//
// Anonymous home and list pages are answered from the short-lived caches
// after the first request, as under load.
func BenchmarkRoutes(b *testing.B) {
	db := storetest.OpenSQLite(b)
	hasher := auth.Bcrypt{Cost: 4}
	hash, err := hasher.Hash("password")
	if err != nil {
		b.Fatal(err)
	}
	storetest.Seed(b, db, seed.Options{Seed: 1, Scale: 0.002, PasswordHash: hash})
	tokens, err := auth.NewTokens([]auth.Key{{ID: "k1", Secret: bytes.Repeat([]byte("s"), 32)}}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	svc := conduit.NewService(db, cache.NewMemory(10000), hasher)
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	site := web.New(svc, tokens, logger, web.Options{})
	srv := server.New(server.Deps{
		API: api.New(svc, tokens), APIError: api.WriteError, Web: site, WebError: site.WriteError,
		DB: db, Logger: logger, Registry: prometheus.NewRegistry(),
	})
	h := srv.Handler()

	do := func(b testing.TB, method, path, token, body string) *httptest.ResponseRecorder {
		var r *http.Request
		if body != "" {
			r = httptest.NewRequest(method, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
		} else {
			r = httptest.NewRequest(method, path, nil)
		}
		if token != "" {
			r.Header.Set("Authorization", "Token "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s %s: status %d: %.200s", method, path, rec.Code, rec.Body.String())
		}
		return rec
	}
	// A popular article and tag, and a signed-in reader, as the bench picks.
	var list struct {
		Articles []struct {
			Slug    string   `json:"slug"`
			TagList []string `json:"tagList"`
		} `json:"articles"`
	}
	if err := json.Unmarshal(do(b, "GET", "/api/articles?limit=20", "", "").Body.Bytes(), &list); err != nil || len(list.Articles) == 0 {
		b.Fatalf("list: %v", err)
	}
	slug, tag := list.Articles[0].Slug, "x"
	for _, a := range list.Articles {
		if len(a.TagList) > 0 {
			tag = a.TagList[0]
			break
		}
	}
	var login struct {
		User struct {
			Token string `json:"token"`
		} `json:"user"`
	}
	rec := do(b, "POST", "/api/users/login", "", `{"user":{"email":"user1@example.com","password":"password"}}`)
	if err := json.Unmarshal(rec.Body.Bytes(), &login); err != nil || login.User.Token == "" {
		b.Fatalf("login: %v %s", err, rec.Body.String())
	}
	token := login.User.Token

	for _, c := range []struct{ name, path, token string }{
		{"page article", "/article/" + slug, ""},
		{"page home", "/", ""},
		{"page tag", "/?tag=" + tag, ""},
		{"api article", "/api/articles/" + slug, ""},
		{"api list", "/api/articles?limit=20", ""},
		{"api article signed in", "/api/articles/" + slug, token},
		{"api list signed in", "/api/articles?limit=20", token},
		{"api feed", "/api/articles/feed?limit=20", token},
		{"api comments", "/api/articles/" + slug + "/comments", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			do(b, "GET", c.path, c.token, "") // warm the caches
			b.ReportAllocs()
			for b.Loop() {
				do(b, "GET", c.path, c.token, "")
			}
		})
	}
}
