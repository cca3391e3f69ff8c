package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A database that refuses connections (ALTER DATABASE … ALLOW_CONNECTIONS
// false: SQLSTATE 55000 while connecting) is unavailable, not broken: the
// store says conduit.ErrUnavailable and the API answers 503 + Retry-After.
func TestPostgresRefusingConnectionsIsUnavailable(t *testing.T) {
	dbURL := storetest.NewPostgresDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	db, err := store.OpenPostgres(ctx, dbURL, store.PostgresOptions{MaxConns: 4, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens([]auth.Key{{ID: "k", Secret: []byte(strings.Repeat("s", 32))}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(conduit.NewService(db, cache.None{}, auth.Bcrypt{Cost: 4}), tokens))
	defer srv.Close()
	if res := get(t, srv.URL+"/api/tags"); res.StatusCode != http.StatusOK {
		t.Fatalf("tags before: %d", res.StatusCode)
	}

	admin := storetest.PostgresURL(t)
	adminExec(t, admin, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`)
	defer adminExec(t, admin, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`)
	adminExec(t, admin, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+name+`'`)

	// The pool may first notice its dead connections; then it must
	// connect again and be refused.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) // the expected 503s are logged
	t.Cleanup(func() { slog.SetDefault(prev) })
	refused := false
	for range 5 {
		_, err := db.Tags(ctx)
		if !errors.Is(err, conduit.ErrUnavailable) {
			t.Fatalf("query while connections are refused: %v, want ErrUnavailable", err)
		}
		refused = refused || strings.Contains(err.Error(), "55000")
		res := get(t, srv.URL+"/api/tags")
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Fatalf("API while connections are refused: %d, Retry-After %q; want 503 with Retry-After",
				res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
	if !refused {
		t.Fatal("never saw the refusal (55000): the test did not reach a new connection")
	}

	// Opening the store now fails as unavailable too (worth waiting for:
	// connections will be allowed again), unlike opening a database that
	// does not exist, which waiting will not fix.
	if _, err := store.OpenPostgres(ctx, dbURL, store.PostgresOptions{ConnectTimeout: 2 * time.Second}); !errors.Is(err, conduit.ErrUnavailable) {
		t.Errorf("open while connections are refused: %v, want ErrUnavailable", err)
	}
	u.Path = "/" + name + "_missing"
	if _, err := store.OpenPostgres(ctx, u.String(), store.PostgresOptions{ConnectTimeout: 2 * time.Second}); err == nil ||
		errors.Is(err, conduit.ErrUnavailable) || !strings.Contains(err.Error(), "3D000") {
		t.Errorf("open of a missing database: %v, want a lasting error (3D000), not ErrUnavailable", err)
	}
}

func get(t *testing.T, u string) *http.Response {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func adminExec(t *testing.T, admin, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
