package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// BenchmarkPagesOnMiss builds the site's pages as they are built when no
// kept copy serves them: the list pages with the page cache emptied before
// each request (the miss of an anonymous visitor: fresh reads, counts
// marked and split out), a signed-in home page (never kept) and an article
// page (never kept), over a seeded SQLite database whose reads the
// service's cache answers. What it adds to BenchmarkRoutes
// (internal/bench) is the rendering of list pages, which that benchmark
// serves from the page cache after the first request:
//
//	go test ./internal/web -run '^$' -bench PagesOnMiss -benchmem -cpuprofile cpu.pprof
func BenchmarkPagesOnMiss(b *testing.B) {
	ctx := context.Background()
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
	site := New(svc, tokens, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})), Options{})
	u, err := svc.Login(ctx, conduit.SignIn{Email: "user1@example.com", Password: "password"})
	if err != nil {
		b.Fatal(err)
	}
	session := tokens.Issue(u.ID, u.TokenGen)

	list, err := svc.Articles(ctx, 0, conduit.ArticleFilter{Limit: 20})
	if err != nil || len(list.Articles) == 0 {
		b.Fatalf("articles: %v", err)
	}
	a := list.Articles[0]
	tag := "x"
	for _, a := range list.Articles {
		if len(a.Tags) > 0 {
			tag = a.Tags[0]
			break
		}
	}

	get := func(b *testing.B, path string, signedIn bool) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if signedIn {
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
		}
		rec := httptest.NewRecorder()
		site.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: status %d", path, rec.Code)
		}
	}
	for _, c := range []struct {
		name, path string
		signedIn   bool
	}{
		{"home", "/", false},
		{"tag", "/?tag=" + url.QueryEscape(tag), false},
		{"profile", profilePath(a.Author.Username), false},
		{"home signed in", "/", true},
		{"article", articlePath(a.Slug), false},
	} {
		b.Run(c.name, func(b *testing.B) {
			get(b, c.path, c.signedIn) // warm the service's cache
			b.ReportAllocs()
			for b.Loop() {
				site.h.pages.Clear()
				get(b, c.path, c.signedIn)
			}
		})
	}
}
