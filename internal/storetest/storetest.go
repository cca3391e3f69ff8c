// Package storetest opens fresh databases for tests: an embedded SQLite file
// in a temp dir always, and PostgreSQL when CONDUIT_TEST_POSTGRES_URL is set
// (a fresh database is created on that server for every test and dropped
// after it). Tests that take a backend run once per backend with t.Run.
//
// Both start as copies of a database migrated once per test process, which
// is what keeps the suite fast. A package whose tests use PostgreSQL adds
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
//
// so that its migrated template is dropped when its tests end (see Main).
//
// With CI=true, a missing or unreachable PostgreSQL fails the tests instead
// of skipping them.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// OpenSQLite returns a migrated SQLite database in a temp dir (in memory
// where it can, see memDir), closed when the test ends. It starts as a copy of a database this process migrated
// once (see sqliteTemplate).
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	files, err := sqliteTemplate()
	if err != nil {
		t.Fatalf("sqlite template: %v", err)
	}
	dir := memDir(t)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := store.OpenSQLite(context.Background(), filepath.Join(dir, sqliteFile))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	RunJobsInline(t, db)
	return db
}

const sqliteFile = "conduit.db"

// shmDir is a memory-backed directory, where one is (Linux).
const shmDir = "/dev/shm"

// memDir returns a directory for one test's SQLite files, removed when the
// test ends: under shmDir when it is there, else t.TempDir. The store
// syncs every commit to disk (synchronous=FULL); on a disk shared with
// other work those syncs were most of a SQLite test's time (the seed test
// ran twice as fast in memory), and a test cannot tell a synced file from
// one in memory, as no test here loses power. The code under test is the
// same either way.
func memDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(shmDir, "conduit-storetest-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

var sqliteTemplate = sync.OnceValues(migrateSQLiteTemplate)

// migrateSQLiteTemplate migrates a database in a temp dir and returns its
// files by name, so that every test copies them instead of running every
// migration in a transaction of its own. The dir is removed at once: the
// copy lives in memory, and nothing is left behind when the process ends.
func migrateSQLiteTemplate() (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "conduit-storetest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(dir, sqliteFile))
	if err != nil {
		return nil, err
	}
	_, err = db.Migrate(ctx)
	// Closing the last connection checkpoints the WAL into the main file;
	// a WAL left behind is copied too.
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, name := range []string{sqliteFile, sqliteFile + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) && name != sqliteFile {
			continue
		}
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return files, nil
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
