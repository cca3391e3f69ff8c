package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/idempotency"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// fuzzMethods are the methods FuzzAPIRequest picks from.
var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"}

// FuzzAPIRequest sends the whole API (with idempotency keys, on SQLite)
// requests with an arbitrary method, path, query string, body and
// Idempotency-Key, anonymous or signed in (seed corpus in
// testdata/fuzz/FuzzAPIRequest: every route with the fixture's values).
// Whatever they hold, the answer is never a 5xx.
func FuzzAPIRequest(f *testing.F) {
	ctx := context.Background()
	db := storetest.OpenSQLite(f)
	tokens, err := auth.NewTokens([]auth.Key{testKey}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	svc := conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
	h := api.New(svc, tokens, api.WithIdempotency(db, idempotency.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	u, err := svc.Register(ctx, conduit.NewUser{Username: "fuzzer", Email: "fuzzer@example.com", Password: "password-fuzzer"})
	if err != nil {
		f.Fatal(err)
	}
	a, err := svc.CreateArticle(ctx, u.ID, conduit.NewArticle{Title: "Fuzzed", Description: "d", Body: "b", Tags: []string{"go"}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.AddComment(ctx, u.ID, a.Slug, "a comment"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method uint8, path, query string, body []byte, signedIn bool, key string) {
		r := httptest.NewRequest("GET", "/", bytes.NewReader(body))
		r.Method = fuzzMethods[int(method)%len(fuzzMethods)]
		r.URL.Path, r.URL.RawQuery = "/api/"+path, query
		r.Header.Set("Content-Type", "application/json")
		if signedIn {
			// A fresh token of the user's current generation: an input
			// may have changed the password or signed out everywhere.
			cur, err := svc.User(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Authorization", "Token "+tokens.Issue(u.ID, cur.TokenGen))
		}
		if key != "" {
			r.Header.Set(idempotency.Header, key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("%s %q ? %q (body %q): %d %s", r.Method, r.URL.Path, query, body, rec.Code, rec.Body)
		}
	})
}
