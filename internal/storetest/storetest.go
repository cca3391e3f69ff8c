// Package storetest opens fresh databases for tests: an embedded SQLite file
// in a temp dir always, and PostgreSQL when CONDUIT_TEST_POSTGRES_URL is set
// (a fresh database is created on that server for every test and dropped
// after it). Tests that take a backend run once per backend with t.Run.
//
// With CI=true, a missing or unreachable PostgreSQL fails the tests instead
// of skipping them.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/queue"
	"github.com/conduit-dev/conduit/internal/store"
)

// PostgresEnv names the variable holding the URL of a PostgreSQL server on
// which tests may create and drop databases, e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const PostgresEnv = "CONDUIT_TEST_POSTGRES_URL"

// Backend opens a fresh, migrated database for one test.
type Backend struct {
	Name string
	Open func(t testing.TB) *store.DB
}

// Backends lists the databases tests run against here: SQLite always,
// PostgreSQL when it is configured (see PostgresEnv).
func Backends(t testing.TB) []Backend {
	bs := []Backend{{Name: "sqlite", Open: OpenSQLite}}
	if PostgresURL(t) != "" {
		bs = append(bs, Backend{Name: "postgres", Open: OpenPostgres})
	}
	return bs
}

// Each runs f once per backend, each with a fresh database.
func Each(t *testing.T, f func(t *testing.T, db *store.DB)) {
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, b.Open(t)) })
	}
}

// OpenSQLite returns a migrated SQLite database in a temp dir, closed when
// the test ends.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "conduit.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	RunJobsInline(t, db)
	return db
}

var (
	probeOnce sync.Once
	probeErr  error
)

// PostgresURL returns the server URL from PostgresEnv, or "" when tests
// should run without PostgreSQL. When CI=true it fails t instead of
// returning "" (the variable is unset or the server does not answer).
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(PostgresEnv)
	ci := os.Getenv("CI") == "true"
	if u == "" {
		if ci {
			t.Fatalf("CI=true but %s is not set: the PostgreSQL tests must run in CI", PostgresEnv)
		}
		logOnce(t, "%s is not set: skipping the PostgreSQL runs (set it to e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)", PostgresEnv)
		return ""
	}
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			probeErr = err
			return
		}
		defer c.Close(ctx)
		probeErr = c.Ping(ctx)
	})
	if probeErr != nil {
		if ci {
			t.Fatalf("CI=true but PostgreSQL at %s is unreachable: %v", redact(u), probeErr)
		}
		logOnce(t, "PostgreSQL at %s is unreachable, skipping the PostgreSQL runs: %v", redact(u), probeErr)
		return ""
	}
	return u
}

var logged sync.Map

func logOnce(t testing.TB, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if _, dup := logged.LoadOrStore(msg, true); !dup {
		fmt.Fprintln(os.Stderr, "storetest:", msg)
	}
	t.Log(msg)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// OpenPostgres creates a fresh database on the server named by PostgresEnv,
// migrates it and drops it when the test ends.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	u := NewPostgresDatabase(t)
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, u, store.PostgresOptions{MaxConns: 20})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	RunJobsInline(t, db)
	return db
}

// NewPostgresDatabase creates an empty database with a unique name on the
// server named by PostgresEnv and returns its URL; the database is dropped
// (connections and all) when the test ends. It skips t, or fails it under
// CI, when no server is configured.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := PostgresURL(t)
	if admin == "" {
		t.Skipf("%s is not set or unreachable", PostgresEnv)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "conduit_test_" + hex.EncodeToString(b[:])
	if err := adminExec(admin, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := adminExec(admin, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	p, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	p.Path = "/" + name
	return p.String()
}

func adminExec(admin, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// RunJobsInline makes every write on db run the jobs it enqueued before it
// returns (timeline fan-out, notifications), as if workers were
// infinitely fast: tests of the feed and notifications through the
// service see the state the queue converges to. OpenSQLite and
// OpenPostgres install it; db.OnJobs(nil) takes it off again for tests of
// the queue itself. Failures fail t.
func RunJobsInline(t testing.TB, db *store.DB) {
	jobs := conduit.NewJobs(db, conduit.FeedOptions{})
	var mu sync.Mutex
	db.OnJobs(func() {
		mu.Lock()
		defer mu.Unlock()
		if err := queue.Drain(context.Background(), db, jobs, queue.Options{}); err != nil {
			t.Errorf("running jobs inline: %v", err)
		}
		dead, err := db.DeadJobs(context.Background(), 10)
		if err != nil || len(dead) > 0 {
			t.Errorf("jobs run inline failed: %v %+v", err, dead)
		}
	})
}
