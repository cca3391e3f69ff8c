package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/conduit-dev/conduit/internal/store"
)

// A test process names every database it makes on the shared server after
// one run: <run>_tmpl, migrated once, and <run>_1, <run>_2, ..., one per
// test, each created from the template (CREATE DATABASE ... TEMPLATE copies
// the template's pages instead of replaying the migrations). The run name is also the application_name of a session the
// process keeps open, so other processes can tell a live run from one that
// is gone (killed, or ended without Main) and drop the latter's databases.
//
// The prefix is distinct from older versions' conduit_test_*, whose
// databases carry no such session: they are never touched here.
const runPrefix = "conduit_run_"

// pgRun is this process's share of the server named by PostgresEnv.
type pgRun struct {
	base   *url.URL // the server URL from PostgresEnv
	name   string
	holder *pgx.Conn     // the session that marks the run live; never used after start
	pool   *pgxpool.Pool // CREATE and DROP DATABASE, from parallel tests
	seq    atomic.Int64

	tmplOnce sync.Once
	tmplErr  error
	reuse    *reuse // how copies are reset for reuse (see reuse.go); nil: never

	// Under Main, which waits for them before the process exits, copies of
	// the template are made ahead of need and drops are not waited for.
	background bool
	spares     chan spare
	free       chan string  // copies emptied after their tests, ready for reuse
	reused     atomic.Int64 // how many copies were reset for reuse
	recycling  sync.WaitGroup
	stop       context.CancelFunc
	maker      sync.WaitGroup // the spare maker
	drops      sync.WaitGroup // drops in flight
	dropSlots  chan struct{}
}

// spare is a copy of the template made ahead of need, or why it failed.
type spare struct {
	name string
	err  error
}

var (
	runMu     sync.Mutex
	run       *pgRun
	underMain bool // Main runs the tests: it can wait for background work
)

// currentRun starts this process's run on the first call. It skips t, or
// fails it under CI, when no server is configured.
func currentRun(t testing.TB) *pgRun {
	t.Helper()
	admin := PostgresURL(t)
	if admin == "" {
		t.Skipf("%s is not set or unreachable", PostgresEnv)
	}
	runMu.Lock()
	defer runMu.Unlock()
	if run == nil {
		r, err := startRun(admin, underMain)
		if err != nil {
			t.Fatalf("PostgreSQL test run: %v", err)
		}
		run = r
	}
	return run
}

func startRun(admin string, background bool) (*pgRun, error) {
	base, err := url.Parse(admin)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", PostgresEnv, err)
	}
	var b [8]byte
	rand.Read(b[:])
	r := &pgRun{
		base:       base,
		name:       runPrefix + hex.EncodeToString(b[:]),
		background: background,
		spares:     make(chan spare),
		free:       make(chan string, 64),
		dropSlots:  make(chan struct{}, 3),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", PostgresEnv, err)
	}
	cfg.RuntimeParams["application_name"] = r.name
	cfg.RuntimeParams["idle_session_timeout"] = "0" // it idles all along
	// The holder connects before any database of the run exists, so a
	// cleaner that sees one of them also sees the holder while it lives.
	if r.holder, err = pgx.ConnectConfig(ctx, cfg); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(admin)
	if err != nil {
		r.holder.Close(ctx)
		return nil, fmt.Errorf("parse %s: %w", PostgresEnv, err)
	}
	pcfg.MaxConns = 4
	pcfg.ConnConfig.RuntimeParams["application_name"] = r.name
	if r.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		r.holder.Close(ctx)
		return nil, err
	}
	if background {
		// Main waits for the drops in flight before the process ends.
		r.drops.Add(1)
		go func() { defer r.drops.Done(); r.dropOrphans(context.Background()) }()
	} else {
		r.dropOrphans(ctx)
	}
	return r, nil
}

// dropOrphans drops the databases of runs whose holder session is gone.
// The live sessions are read after the databases: a run that made one of
// those databases had connected its holder before, so it shows up here.
func (r *pgRun) dropOrphans(ctx context.Context) {
	pattern := strings.ReplaceAll(runPrefix, "_", `\_`) + "%"
	dbs, err := r.strings(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1`, pattern)
	if err != nil || len(dbs) == 0 {
		return
	}
	live, err := r.strings(ctx, `SELECT DISTINCT application_name FROM pg_stat_activity WHERE application_name LIKE $1`, pattern)
	if err != nil {
		return
	}
	alive := map[string]bool{}
	for _, a := range live {
		alive[a] = true
	}
	for _, db := range dbs {
		owner, _, _ := strings.Cut(strings.TrimPrefix(db, runPrefix), "_")
		if !alive[runPrefix+owner] {
			// Another process may be dropping it too, or it may belong
			// to another user: neither is this test's business.
			r.dropNow(pgx.Identifier{db}.Sanitize())
		}
	}
}

func (r *pgRun) strings(ctx context.Context, sql string, args ...any) ([]string, error) {
	rows, err := r.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (r *pgRun) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := r.pool.Exec(ctx, sql)
	return err
}

func (r *pgRun) template() string { return r.name + "_tmpl" }

// create creates a new database of the run, a copy of the template when
// migrated is true, empty otherwise, and returns its name.
func (r *pgRun) create(ctx context.Context, migrated bool) (string, error) {
	name := r.name + "_" + strconv.FormatInt(r.seq.Add(1), 10)
	sql := `CREATE DATABASE ` + name
	if migrated {
		sql += ` TEMPLATE ` + r.template()
	}
	if err := r.exec(ctx, sql); err != nil {
		return name, fmt.Errorf("create database %s: %w", name, err)
	}
	return name, nil
}

// migrateTemplate creates and migrates the run's template once, and under
// Main starts making copies of it ahead of need.
func (r *pgRun) migrateTemplate() error {
	r.tmplOnce.Do(func() {
		ctx := context.Background()
		if r.tmplErr = r.exec(ctx, `CREATE DATABASE `+r.template()); r.tmplErr != nil {
			return
		}
		db, err := store.OpenPostgres(ctx, r.url(r.template()), store.PostgresOptions{MaxConns: 2})
		if err != nil {
			r.tmplErr = err
			return
		}
		_, err = db.Migrate(ctx)
		// CREATE DATABASE ... TEMPLATE needs the template to have no
		// sessions: the pool closes all of its connections here.
		db.Close()
		if r.tmplErr = err; err != nil || !r.background {
			return
		}
		c, err := pgx.Connect(ctx, r.url(r.template()))
		if err != nil {
			r.tmplErr = err
			return
		}
		r.reuse, err = readReuse(ctx, c)
		c.Close(ctx)
		if err != nil {
			r.tmplErr = fmt.Errorf("read the template for reuse: %w", err)
			return
		}
		ctx, r.stop = context.WithCancel(ctx)
		r.maker.Add(1)
		go r.makeSpares(ctx)
	})
	return r.tmplErr
}

// makeSpares keeps one copy of the template ready until ctx ends. Copying
// is I/O on the server (CREATE DATABASE writes the whole copy to the WAL
// and syncs it: tens to hundreds of milliseconds, depending on the
// server's load), so making the next copy while a test runs takes it off
// the test's path.
func (r *pgRun) makeSpares(ctx context.Context) {
	defer r.maker.Done()
	for {
		name, err := r.create(ctx, true)
		select {
		case r.spares <- spare{name, err}:
		case <-ctx.Done():
			r.dropLater(name)
			return
		}
	}
}

// newDatabase returns the URL of a database of the run, a copy of the
// migrated template when migrated is true, empty otherwise, dropped when
// t ends.
func (r *pgRun) newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	var s spare
	switch {
	case !migrated:
		s.name, s.err = r.create(context.Background(), false)
	case r.migrateTemplate() != nil:
		t.Fatalf("migrate the template database: %v", r.tmplErr)
	case r.background:
		// A copy a test is done with, emptied, before a new one.
		select {
		case s.name = <-r.free:
		default:
			select {
			case s.name = <-r.free:
			case s = <-r.spares:
			}
		}
	default:
		s.name, s.err = r.create(context.Background(), true)
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	if migrated && r.background {
		r.recycling.Add(1)
		t.Cleanup(func() {
			go func() { defer r.recycling.Done(); r.recycle(s.name) }()
		})
	} else {
		t.Cleanup(func() { r.drop(t, s.name) })
	}
	return r.url(s.name)
}

// drop drops database name (connections and all). PostgreSQL 15 makes
// DROP DATABASE wait for a checkpoint, which on a busy shared server can
// take a good part of a second; under Main the test does not wait for it.
func (r *pgRun) drop(t testing.TB, name string) {
	if r.background {
		r.dropLater(name)
		return
	}
	if err := r.exec(context.Background(), dropSQL(name)); err != nil {
		t.Errorf("drop database %s: %v", name, err)
	}
}

// dropLater drops database name in the background, a few at a time (drops
// that overlap share their checkpoints).
func (r *pgRun) dropLater(name string) {
	r.drops.Add(1)
	go func() {
		defer r.drops.Done()
		r.dropSlots <- struct{}{}
		defer func() { <-r.dropSlots }()
		r.dropNow(name)
	}()
}

// dropNow drops database name, reporting a failure on stderr: it runs
// where no test is left to fail.
func (r *pgRun) dropNow(name string) {
	if err := r.exec(context.Background(), dropSQL(name)); err != nil {
		fmt.Fprintf(os.Stderr, "storetest: drop database %s: %v\n", name, err)
	}
}

// dropOwnSession is dropNow on a session of its own, not one of the
// pool's few.
func (r *pgRun) dropOwnSession(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, r.base.String())
	if err != nil {
		r.dropNow(name)
		return
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, dropSQL(name)); err != nil {
		fmt.Fprintf(os.Stderr, "storetest: drop database %s: %v\n", name, err)
	}
}

func dropSQL(name string) string { return `DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)` }

// url is the address of database name on the server. Sessions through it
// do not wait for the WAL to reach the disk when they commit: a crash of
// the shared server could lose the last commits of a test database, which
// nobody would miss, and every write in every test no longer waits for an
// fsync on a disk other engineers share. What a committed write is to
// everyone else (visible, and kept unless the server crashes) is the same.
func (r *pgRun) url(name string) string {
	u := *r.base
	u.Path = "/" + name
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}

// finish stops the spare maker, drops the template and waits for the drops
// in flight, and ends the run's sessions.
func (r *pgRun) finish() {
	if r.stop != nil {
		r.stop()
	}
	r.maker.Wait()     // no more copies of the template are being made
	r.recycling.Wait() // nor emptied for reuse
	// The last drops all at once: each waits for a checkpoint, and drops
	// waiting together share one.
	last := []string{r.template()}
	for len(r.free) > 0 {
		last = append(last, <-r.free)
	}
	for _, name := range last {
		r.drops.Add(1)
		go func() { defer r.drops.Done(); r.dropOwnSession(name) }()
	}
	if os.Getenv(debugEnv) != "" {
		fmt.Fprintf(os.Stderr, "storetest: %d databases made, %d reset for reuse\n", r.seq.Load(), r.reused.Load())
	}
	r.drops.Wait()
	r.pool.Close()
	r.holder.Close(context.Background())
}

// Main runs the tests of a package and then drops the PostgreSQL databases
// its tests made, if any. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
//
// (the test binary exits with m.Run's result when TestMain returns). Under
// Main, copies of the template are made ahead of need and the tests do not
// wait for their databases to be dropped. A package without it waits for
// both, and leaves its template behind until the next test process that
// uses PostgreSQL drops it.
func Main(m *testing.M) {
	runMu.Lock()
	underMain = true
	runMu.Unlock()
	m.Run()
	runMu.Lock()
	defer runMu.Unlock()
	if run != nil {
		run.finish()
		run = nil
	}
}

// OpenPostgres creates a fresh migrated database on the server named by
// PostgresEnv and drops it when the test ends.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	u := currentRun(t).newDatabase(t, true)
	db, err := store.OpenPostgres(context.Background(), u, store.PostgresOptions{MaxConns: 20})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	RunJobsInline(t, db)
	return db
}

// NewPostgresDatabase creates an empty database with a unique name on the
// server named by PostgresEnv and returns its URL; the database is dropped
// (connections and all) when the test ends. It skips t, or fails it under
// CI, when no server is configured.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	return currentRun(t).newDatabase(t, false)
}

// NewMigratedPostgresDatabase is NewPostgresDatabase with the schema
// already migrated, for tests that open the database themselves (several
// nodes on one database, say).
func NewMigratedPostgresDatabase(t testing.TB) string {
	t.Helper()
	return currentRun(t).newDatabase(t, true)
}
