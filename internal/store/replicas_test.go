package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

type userKey struct{}

func asUser(id int64) context.Context {
	return context.WithValue(context.Background(), userKey{}, id)
}

// testSet is a replicaSet over fake replicas (no servers): the routing
// rules alone.
func testSet(t *testing.T, now *time.Time, names ...string) *replicaSet {
	t.Helper()
	s := &replicaSet{maxLag: 5 * time.Second, interval: 250 * time.Millisecond,
		userOf: func(ctx context.Context) int64 { id, _ := ctx.Value(userKey{}).(int64); return id },
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:    func() time.Time { return *now }, pos: newPositions(true), primaryUp: true, primaryOK: *now}
	s.pos.establish(s.pos.waiting(*now), 0)
	for _, n := range names {
		s.replicas = append(s.replicas, &replica{name: n})
	}
	return s
}

func (r *replica) set(up bool, replay uint64, freshAsOf time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up, r.replay, r.freshAsOf = up, replay, freshAsOf
}

func TestChooseLagCutOff(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a", "b")
	a, b := s.replicas[0], s.replicas[1]
	a.set(true, 100, now.Add(-6*time.Second)) // beyond the 5 s cut-off
	b.set(true, 100, now.Add(-4*time.Second))
	for range 5 {
		if r, _ := s.route(context.Background()); r != b {
			t.Fatalf("anonymous read went to %v, want only b (a lags 6 s)", name(r))
		}
	}
	b.set(false, 100, now) // down: skipped at once
	if r, why := s.route(context.Background()); r != nil || why != forLag {
		t.Fatalf("with no replica within the cut-off: %v (%s), want the primary for lag", name(r), reasonNames[why])
	}
	a.set(true, 100, now)
	b.set(true, 100, now)
	seen := map[string]int{}
	for range 10 {
		r, _ := s.route(context.Background())
		seen[name(r)]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Errorf("reads not spread over both healthy replicas: %v", seen)
	}
}

// A background job's reads (conduit.Latest) go to the primary even when
// every replica is up to date with every position heard of: the write
// that enqueued the job may not have been heard of yet.
func TestLatestReadsGoToThePrimary(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a")
	s.replicas[0].set(true, 1<<40, now)
	if r, _ := s.route(context.Background()); r != s.replicas[0] {
		t.Fatalf("an anonymous read went to %v, want the replica", name(r))
	}
	if r, why := s.route(conduit.Latest(context.Background())); r != nil || why != forLatest {
		t.Fatalf("a job's read went to %v (%s), want the primary", name(r), reasonNames[why])
	}
	if retry, _ := s.failed(conduit.Latest(context.Background()), nil, context.DeadlineExceeded, 1); retry {
		t.Error("a job's read that failed on the primary is retried elsewhere")
	}
}

func TestChooseReadYourWrites(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a", "b")
	a, b := s.replicas[0], s.replicas[1]
	a.set(true, 500, now)
	b.set(true, 900, now)
	s.pos.note(800, 7) // user 7 wrote at 800

	for range 4 {
		if r, _ := s.route(asUser(7)); r != b {
			t.Fatalf("user 7 read from %v, want b (only b replayed 800)", name(r))
		}
	}
	// Another user, and an anonymous reader, may read either.
	seen := map[string]bool{}
	for range 10 {
		r, _ := s.route(asUser(8))
		seen[name(r)] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("user 8 (no writes) not spread: %v", seen)
	}
	s.pos.note(1000, 7)
	// (choose, not route: route would probe b, and the fakes have no
	// server to ask.)
	if r, why := s.choose(1000, true, false); r != nil || why != forPosition {
		t.Fatalf("user 7 after a write at 1000: %v (%s), want the primary for position", name(r), reasonNames[why])
	}
	// A fresh read needs every position heard of, whoever asks.
	need, known, fresh := s.needs(conduit.Fresh(context.Background()))
	if need != 1000 || !known || !fresh {
		t.Fatalf("fresh read needs %d (known %v fresh %v), want 1000", need, known, fresh)
	}
	if r, why := s.choose(need, known, fresh); r != nil || why != forFresh {
		t.Fatalf("fresh read: %v (%s), want the primary", name(r), reasonNames[why])
	}
}

func TestChooseUnknownPositionsAndPrimaryDown(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a")
	a := s.replicas[0]
	a.set(true, 500, now)
	s.pos.note(400, 7)
	s.pos.setBus(false, now) // the bus dropped: positions may be missing
	if r, why := s.route(asUser(7)); r != nil || why != forUnknown {
		t.Fatalf("with the bus down and the primary up: %v (%s), want the primary", name(r), reasonNames[why])
	}
	if r, _ := s.route(context.Background()); r != a {
		t.Fatalf("anonymous reads need no positions: got %v", name(r))
	}
	// The primary fails (a failover). It is still tried first: a new one
	// may already take writes this node has not heard of.
	s.mu.Lock()
	s.primaryUp = false
	s.mu.Unlock()
	now = now.Add(30 * time.Second)
	if r, why := s.route(asUser(7)); r != nil || why != forUnknown {
		t.Fatalf("primary down, positions unknown: user 7 read from %v (%s), want the primary first", name(r), reasonNames[why])
	}
	// It fails: nothing new can commit without a primary, so the positions
	// known so far are all there is, and the replicas' lag stays frozen.
	if retry, to := s.failed(asUser(7), nil, errGone, 1); !retry || to != a {
		t.Fatalf("a read the primary failed was not retried on the replica (retry %v, to %v)", retry, name(to))
	}
	// The bus reconnects: a floor is needed from the primary first, once
	// the other nodes have had time to learn of this one.
	s.pos.setBus(true, now)
	if gen := s.pos.waiting(now.Add(busSettle / 2)); gen != 0 {
		t.Fatal("a floor was wanted before the other nodes could know this one")
	}
	gen := s.pos.waiting(now.Add(busSettle))
	if gen == 0 {
		t.Fatal("no floor pending after the bus reconnected")
	}
	s.pos.establish(gen, 450)
	if need, known := s.pos.need(99, false); need != 450 || !known {
		t.Fatalf("after the floor: need %d known %v, want 450 true", need, known)
	}
	// A floor read for an older connection does not count.
	s.pos.setBus(false, now)
	s.pos.setBus(true, now)
	s.pos.establish(gen, 10_000)
	if _, known := s.pos.need(99, false); known {
		t.Fatal("a floor taken before the last reconnect was accepted")
	}
}

func TestPositionsPruneAndBound(t *testing.T) {
	p := newPositions(true)
	p.establish(p.waiting(time.Now()), 0)
	p.note(100, 1)
	p.note(300, 2)
	p.note(200) // anonymous: only the highest position moves
	if n, _ := p.need(0, true); n != 300 {
		t.Fatalf("fresh need %d, want 300", n)
	}
	p.prune(150)
	if len(p.users) != 1 {
		t.Fatalf("after pruning at 150: %v, want only user 2", p.users)
	}
	if n, _ := p.need(1, false); n != 150 {
		t.Fatalf("a pruned user needs %d, want the floor 150", n)
	}
	if n, _ := p.need(2, false); n != 300 {
		t.Fatalf("user 2 needs %d, want 300", n)
	}
	for i := range int64(maxTracked) {
		p.note(1000+uint64(i), 10+i)
	}
	p.note(5, 1)
	if len(p.users) > maxTracked {
		t.Fatalf("%d positions kept, bound is %d", len(p.users), maxTracked)
	}
	if n, _ := p.need(11, false); n < 1001 {
		t.Fatalf("a user dropped by the bound needs %d, want at least their position 1001", n)
	}
}

func TestHeardPositions(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a")
	sent := strconv.FormatInt(now.UnixMilli(), 10)
	s.heard(sent + " 1234 5 6")
	s.heard("garbage")
	s.heard(sent + " garbage")
	s.heard("")
	for _, u := range []int64{5, 6} {
		if n, _ := s.pos.need(u, false); n != 1234 {
			t.Errorf("user %d needs %d, want 1234", u, n)
		}
	}
	if n, _ := s.pos.need(0, true); n != 1234 {
		t.Errorf("fresh need %d, want 1234", n)
	}
	// A position heard late: the writer may have stopped waiting for this
	// node, so what it knows cannot be trusted until a new floor.
	s.heard(strconv.FormatInt(now.Add(-2*lateAfter).UnixMilli(), 10) + " 1300 5")
	if n, known := s.pos.need(5, false); n != 1300 || known {
		t.Errorf("after a late position: need %d known %v, want 1300 and not known", n, known)
	}
}

func TestPerHost(t *testing.T) {
	cfgs, err := perHost("postgres://u:p@h1:5001,h2:5002,h3/db?sslmode=prefer&target_session_attrs=standby", PostgresOptions{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"h1:5001", "h2:5002", "h3:5432"}
	if len(cfgs) != len(want) {
		t.Fatalf("%d pools, want %d", len(cfgs), len(want))
	}
	for i, c := range cfgs {
		got := c.ConnConfig.Host + ":" + itoa(c.ConnConfig.Port)
		if got != want[i] {
			t.Errorf("pool %d: %s, want %s", i, got, want[i])
		}
		for _, f := range c.ConnConfig.Fallbacks {
			if f.Host != c.ConnConfig.Host || f.Port != c.ConnConfig.Port {
				t.Errorf("pool %d falls back to another host %s:%d", i, f.Host, f.Port)
			}
		}
		if c.ConnConfig.ValidateConnect == nil {
			t.Errorf("pool %d lost target_session_attrs", i)
		}
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func name(r *replica) string {
	if r == nil {
		return "primary"
	}
	return r.name
}

// errGone is what a read gets from a server that went away.
var errGone = io.ErrUnexpectedEOF

// No read, anonymous ones included, goes to a replica that has not yet
// replayed the schema this node migrated before it started serving.
func TestSchemaFloor(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a")
	s.pos = newPositions(true)
	a := s.replicas[0]
	a.set(true, 500, now)
	s.pos.note(300)
	if need, _, _ := s.needs(context.Background()); need != 300 {
		t.Fatalf("before the first floor an anonymous read needs %d, want everything heard of (300)", need)
	}
	s.pos.establish(s.pos.waiting(now), 900) // migrated up to 900, then started
	if r, why := s.choose(s.pos.schemaFloor(), true, false); r != nil || why != forPosition {
		t.Fatalf("anonymous read with the replica behind the schema: %v (%s), want the primary", name(r), reasonNames[why])
	}
	a.set(true, 900, now)
	if r, _ := s.route(context.Background()); r != a {
		t.Fatalf("anonymous read once the replica has the schema: %v, want a", name(r))
	}
	s.pos.prune(2000)
	if s.pos.schemaFloor() != 900 {
		t.Fatalf("the schema floor moved with pruning: %d", s.pos.schemaFloor())
	}
}

// A read the primary failed, with no replica holding the reader's last
// write, is tried on the primary again after growing pauses (a planned
// switchover leaves no primary for a second or two), up to readTries
// tries in all, and not after the request is gone.
func TestPrimaryTriedAgainWhileNoReplicaCan(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a")
	s.pause = time.Millisecond
	s.replicas[0].db = sql.OpenDB(&flakyDB{}) // probed: it has replayed 1
	t.Cleanup(func() { s.replicas[0].db.Close() })
	s.replicas[0].set(true, 500, now)
	s.pos.note(800, 7) // user 7 wrote at 800; the replica has 500
	for try := 1; try < readTries; try++ {
		started := time.Now()
		if retry, to := s.failed(asUser(7), nil, errGone, try); !retry || to != nil {
			t.Fatalf("try %d failed on the primary: retry %v on %v, want the primary again", try, retry, name(to))
		}
		if waited := time.Since(started); waited < time.Duration(try)*s.pause {
			t.Errorf("try %d: tried again after %v, want a pause of at least %v", try, waited, time.Duration(try)*s.pause)
		}
	}
	if retry, _ := s.failed(asUser(7), nil, errGone, readTries); retry {
		t.Errorf("the %d-th try was followed by another", readTries)
	}
	ctx, cancel := context.WithCancel(asUser(7))
	cancel()
	if retry, _ := s.failed(ctx, nil, errGone, 1); retry {
		t.Error("a read whose request is gone was tried again")
	}
	// A replica that has the write takes it at once.
	s.replicas[0].set(true, 800, now)
	if retry, to := s.failed(asUser(7), nil, errGone, 1); !retry || to != s.replicas[0] {
		t.Fatalf("with the replica up to date: retry %v on %v, want a", retry, name(to))
	}
}

// query goes on to the next server for as long as the one it tried is
// gone and tries are left: the replica cut off mid-switchover, then the
// primary not yet back, then the primary again.
func TestQueryTriesServersInTurn(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a")
	s.pause = time.Millisecond
	primary := &flakyDB{fails: 2}
	replica := &flakyDB{fails: 1}
	s.primary = sql.OpenDB(primary)
	s.replicas[0].db = sql.OpenDB(replica)
	t.Cleanup(func() { s.primary.Close(); s.replicas[0].db.Close() })
	s.replicas[0].set(true, 500, now)
	rs, err := s.query(context.Background(), "SELECT 1")
	if err != nil {
		t.Fatalf("read failed after %d tries on the replica and %d on the primary: %v", replica.tries.Load(), primary.tries.Load(), err)
	}
	rs.Close()
	if replica.tries.Load() != 1 || primary.tries.Load() != 3 {
		t.Errorf("tries: replica %d, primary %d; want 1 then 3 on the primary", replica.tries.Load(), primary.tries.Load())
	}
	// A server that never comes back: readTries tries, then the error.
	primary.fails, primary.tries = 1<<30, atomic.Int64{}
	if _, err := s.query(asUser(1), "SELECT 1"); err == nil {
		t.Fatal("a read succeeded with the primary gone and the replica down")
	}
	if n := primary.tries.Load(); n != readTries {
		t.Errorf("the primary was tried %d times, want %d", n, readTries)
	}
}

// flakyDB is a database/sql connector whose first fails queries end as a
// connection cut by the server would (io.ErrUnexpectedEOF); later ones
// return one row.
type flakyDB struct {
	fails int64
	tries atomic.Int64
}

func (f *flakyDB) Connect(context.Context) (driver.Conn, error) { return flakyConn{f}, nil }
func (f *flakyDB) Driver() driver.Driver                        { return nil }

type flakyConn struct{ f *flakyDB }

func (c flakyConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	if c.f.tries.Add(1) <= c.f.fails {
		return nil, errGone
	}
	return &oneRow{}, nil
}
func (flakyConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (flakyConn) Close() error                        { return nil }
func (flakyConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }

type oneRow struct{ done bool }

func (*oneRow) Columns() []string { return []string{"n"} }
func (*oneRow) Close() error      { return nil }
func (r *oneRow) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done, dest[0] = true, int64(1)
	return nil
}

// A read the primary must take first (positions unknown here) goes on to
// a replica holding every position known when the primary, believed
// down, accepts and never answers (a demoted primary's last seconds in
// the stage-4 drill): after primaryTry, not after the pool's connect
// timeout or the read's own deadline.
func TestSilentPrimaryBelievedDown(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a")
	s.pause, s.primaryTry = time.Millisecond, 20*time.Millisecond
	silent := &silentDB{}
	replica := &flakyDB{}
	s.primary = sql.OpenDB(silent)
	s.replicas[0].db = sql.OpenDB(replica)
	t.Cleanup(func() { s.primary.Close(); s.replicas[0].db.Close() })
	s.replicas[0].set(true, 800, now)
	s.pos.note(800, 7)
	s.pos.setBus(false, now) // positions may have been missed: the primary first
	s.primaryUp = false

	ctx, cancel := context.WithTimeout(asUser(7), 5*time.Second)
	defer cancel()
	rs, err := s.query(ctx, "SELECT 1")
	if err != nil {
		t.Fatalf("query: %v (the primary was tried %d times)", err, silent.tries.Load())
	}
	rs.Close()
	if silent.tries.Load() != 1 || replica.tries.Load() != 1 {
		t.Errorf("query tried the primary %d times and the replica %d; want once each", silent.tries.Load(), replica.tries.Load())
	}

	r, again := s.queryRow(ctx, "SELECT 1")
	var n int64
	err = r.Scan(&n)
	for err != nil {
		other := again(err)
		if other == nil {
			break
		}
		err = other.Scan(&n)
	}
	if err != nil || n != 1 {
		t.Fatalf("queryRow: %d, %v (the primary was tried %d times)", n, err, silent.tries.Load())
	}
	if ctx.Err() != nil {
		t.Fatal("the reads waited for their own deadline")
	}

	// Believed up, the primary keeps the read's whole deadline: a slow
	// answer is not cut short.
	s.primaryUp = true
	short, cancel2 := context.WithTimeout(asUser(7), 100*time.Millisecond)
	defer cancel2()
	if _, err := s.query(short, "SELECT 1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with the primary believed up: %v, want the read's own deadline", err)
	}
}

// silentDB is a database/sql connector for a server that accepts and
// never answers: Connect returns only when its context ends.
type silentDB struct{ tries atomic.Int64 }

func (d *silentDB) Connect(ctx context.Context) (driver.Conn, error) {
	d.tries.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}
func (d *silentDB) Driver() driver.Driver { return nil }

// A read begun while the primary is believed up, on a primary that then
// stops answering (a demoted primary's last seconds), goes on like one
// begun after the primary was marked down: once this node marks it down
// (the sampler's check, or another read that failed there), the try has
// primaryTry left, then the read is served by a replica holding every
// position known, or fails as the failover rules say; not at the read's
// own deadline (or the pool's connect timeout).
func TestSilentPrimaryMarkedDownMidRead(t *testing.T) {
	now := time.Unix(1000, 0)
	s := testSet(t, &now, "a")
	s.pause, s.primaryTry = time.Millisecond, 20*time.Millisecond
	silent := &silentDB{}
	s.primary = sql.OpenDB(silent)
	s.replicas[0].db = sql.OpenDB(&standbyDB{replay: 800})
	t.Cleanup(func() { s.primary.Close(); s.replicas[0].db.Close() })
	a := s.replicas[0]
	a.set(true, 800, now)
	s.pos.note(800, 7)

	// inFlight runs read while the primary is believed up, marks the
	// primary down once the read waits on it, and returns the read's
	// error.
	inFlight := func(ctx context.Context, read func(context.Context) error, markDown func()) error {
		t.Helper()
		s.mu.Lock()
		s.markPrimary(true)
		s.mu.Unlock()
		tries := silent.tries.Load()
		done := make(chan error, 1)
		go func() { done <- read(ctx) }()
		for silent.tries.Load() == tries {
			select {
			case err := <-done:
				t.Fatalf("the read ended (%v) without waiting on the primary", err)
			case <-time.After(time.Millisecond):
			}
		}
		markDown()
		s.mu.Lock()
		up := s.primaryUp
		s.mu.Unlock()
		if up {
			t.Fatal("the primary was not marked down")
		}
		return <-done
	}
	query := func(ctx context.Context) error {
		rs, err := s.query(ctx, "SELECT 1")
		if err == nil {
			rs.Close()
		}
		return err
	}
	queryRow := func(ctx context.Context) error {
		r, again := s.queryRow(ctx, "SELECT 1")
		var n int64
		err := r.Scan(&n)
		for err != nil {
			other := again(err)
			if other == nil {
				break
			}
			err = other.Scan(&n)
		}
		return err
	}
	// The sampler marks it down (its own try times out after a second).
	sampler := func() { s.check(context.Background()) }
	// Another read, failed there, marks it down at once.
	otherRead := func() { s.failed(context.Background(), nil, errGone, 1) }

	// Positions may have been missed: the primary first, then the replica
	// holding every position known.
	s.pos.setBus(false, now)
	for _, c := range []struct {
		name     string
		read     func(context.Context) error
		markDown func()
	}{{"query, sampler", query, sampler}, {"queryRow, another read", queryRow, otherRead}} {
		ctx, cancel := context.WithTimeout(asUser(7), 10*time.Second)
		reads := a.reads.Load()
		if err := inFlight(ctx, c.read, c.markDown); err != nil {
			t.Errorf("%s: %v, want the read served by the replica", c.name, err)
		} else if ctx.Err() != nil {
			t.Errorf("%s: the read waited for its own deadline", c.name)
		} else if a.reads.Load() != reads+1 {
			t.Errorf("%s: the replica served %d reads, want 1", c.name, a.reads.Load()-reads)
		}
		cancel()
	}

	// User 7's last write is past what the replica has: the primary is
	// tried again while tries are left, then the read fails as silent.
	s.pos.setBus(true, now)
	s.pos.establish(s.pos.waiting(now.Add(busSettle)), 800)
	s.pos.note(900, 7)
	ctx, cancel := context.WithTimeout(asUser(7), 10*time.Second)
	defer cancel()
	tries := silent.tries.Load()
	if err := inFlight(ctx, query, otherRead); !errors.Is(err, errPrimarySilent) || ctx.Err() != nil {
		t.Errorf("with no replica holding the write: %v (deadline: %v), want the primary given up as silent", err, ctx.Err())
	}
	if n := silent.tries.Load() - tries; n != readTries {
		t.Errorf("the primary was tried %d times, want %d", n, readTries)
	}

	// Marked up again, it keeps the whole deadline of a read begun then.
	s.mu.Lock()
	s.markPrimary(true)
	s.mu.Unlock()
	short, cancel2 := context.WithTimeout(asUser(7), 100*time.Millisecond)
	defer cancel2()
	if err := query(short); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errPrimarySilent) {
		t.Errorf("with the primary believed up again: %v, want the read's own deadline", err)
	}
}

// standbyDB is a database/sql connector for a standby that has replayed
// up to replay: it answers the checks and probes, and any other query
// with one row.
type standbyDB struct{ replay int64 }

func (d *standbyDB) Connect(context.Context) (driver.Conn, error) { return standbyConn{d}, nil }
func (d *standbyDB) Driver() driver.Driver                        { return nil }

type standbyConn struct{ d *standbyDB }

func (c standbyConn) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	switch {
	case strings.Contains(q, "pg_is_in_recovery"):
		return &valuesRow{vals: []driver.Value{true, c.d.replay}}, nil
	case strings.Contains(q, "pg_last_wal_replay_lsn"):
		return &valuesRow{vals: []driver.Value{c.d.replay}}, nil
	}
	return &valuesRow{vals: []driver.Value{int64(1)}}, nil
}
func (standbyConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (standbyConn) Close() error                        { return nil }
func (standbyConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }

// valuesRow is one row of vals.
type valuesRow struct {
	vals []driver.Value
	done bool
}

func (r *valuesRow) Columns() []string {
	cols := make([]string, len(r.vals))
	for i := range cols {
		cols[i] = "c" + strconv.Itoa(i)
	}
	return cols
}
func (*valuesRow) Close() error { return nil }
func (r *valuesRow) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	copy(dest, r.vals)
	return nil
}
