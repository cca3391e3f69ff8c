package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// Read replicas (stage 4): reads that may lag go to streaming replicas,
// everything else to the primary. Three rules keep that invisible:
//
//   - Lag cut-off. Every node samples the primary's WAL position
//     (pg_current_wal_lsn) and each replica's replay position every
//     CheckInterval. A replica that has replayed everything the primary had
//     at time t is "fresh as of t"; it gets reads only while now - t stays
//     within MaxLag. A replica that fails is skipped at once and checked
//     again on the next round.
//   - Read-your-writes. After a write transaction commits, the store reads
//     the primary's WAL position (everything committed is at or below it),
//     keeps it as the writer's position and sends it to every other node
//     (PositionBus) before the write is answered; or, with a PositionStore
//     (Redis), stores it there, and reads look it up there. A signed-in
//     user's reads go only to a replica that has replayed past their
//     position (checked again on the replica when the last sample is
//     short), else to the primary.
//   - Fresh reads (conduit.Fresh: cache fills, credential checks) need a
//     replica that has replayed past every write position this node has
//     heard of, so nothing cached is older than an acknowledged write.
//
// A node that may have missed positions (just started, its bus was down,
// or a position reached it late) sends signed-in and fresh reads to the
// primary until it has taken the primary's position, a moment after the
// bus is back, as a floor for everyone. While the primary cannot be
// reached (a failover), reads it fails are retried on replicas with the
// positions known so far and the lag the replicas had when the primary
// was last seen: without a primary nothing new can be committed.
//
// With a PositionStore the bus is not used: the store says when it cannot
// know positions (unreachable, or lost them), and reads needing one go to
// the primary until a check's Floor has stored the primary's position
// there again.

// Replica defaults.
const (
	DefaultReplicaMaxLag = 5 * time.Second
	defaultCheckInterval = 250 * time.Millisecond
	// positionsTopic is the bus topic of read-your-writes positions.
	positionsTopic = "ryw"
	// maxTracked bounds the positions kept per node; beyond it the floor
	// rises to the highest one and the map starts again.
	maxTracked = 100_000
	// busSettle is how long after its bus (re)connects a node waits before
	// it takes its floor: the other nodes learn of it from its first beat
	// (sent as it connects; a hello on a bus without beats), and until
	// they have, their writes do not wait for it to hear their positions.
	// A floor taken after that covers every write they did not wait for.
	busSettle = time.Second
	// lateAfter: a position heard later than this after it was sent may
	// have been one its writer gave up waiting for (cache.Coherent waits
	// 3 s for a Broadcast).
	lateAfter = time.Second
	// readTries bounds the servers one read is tried on: the first, then
	// others as each turns out to be gone.
	readTries = 5
	// primaryRetryPause is the first wait before the primary is tried again
	// for a read no replica can take; the n-th wait is n times as long, so
	// the tries span 2.5 s: a planned switchover leaves no primary behind
	// the balancer for a second or two (old one stopped, new one promoted,
	// then passed by the balancer's checks).
	primaryRetryPause = 250 * time.Millisecond
	// primaryTryLimit bounds a read's try on a primary this node believes
	// down (its last check or read failed), counted from when the try
	// starts or, for a try started while it was believed up, from when it
	// is marked down (see tryCtx).
	primaryTryLimit = 500 * time.Millisecond
)

// errPrimarySilent is a read's try on a primary believed down that had no
// answer within its limit (see tryCtx); it counts as the server being
// gone.
var errPrimarySilent = fmt.Errorf("the primary, believed down, did not answer in time: %w", context.DeadlineExceeded)

// ReplicaOptions configures AttachReplicas.
type ReplicaOptions struct {
	// URLs of the replicas. A URL naming several hosts
	// (postgres://h1:5432,h2:5432/db) counts as one replica per host, so
	// that the store always knows which server a read goes to.
	URLs []string
	// MaxLag: a replica further behind the primary gets no reads
	// (default DefaultReplicaMaxLag).
	MaxLag time.Duration
	// CheckInterval is how often positions are sampled (default 250 ms).
	CheckInterval time.Duration
	// UserOf names the signed-in user a request is made for (0: anonymous),
	// e.g. auth.UserID: their reads follow their own writes.
	UserOf func(context.Context) int64
	// Bus carries write positions between the nodes sharing the database.
	// Nil means this node is the only one that writes.
	Bus PositionBus
	// Positions, if set, keeps the positions where every node reads them
	// (Redis) instead of sending them on Bus, which is then not used.
	Positions PositionStore
	// Pool sets up the replica pools like the primary's.
	Pool   PostgresOptions
	Logger *slog.Logger
}

// PositionBus delivers small messages to every other node (cache.Coherent
// does, over the notification channel that keeps caches coherent).
type PositionBus interface {
	// Broadcast delivers msg to every other node's handler for topic and
	// returns once they have it (or have been given up on).
	Broadcast(ctx context.Context, topic, msg string)
	// Handle registers fn for topic; up reports whether messages are
	// being received (false: some may be lost).
	Handle(topic string, fn func(msg string), up func(bool))
}

// PositionStore keeps write positions where every node reads them
// (cache.Positions, in Redis): a write records its position there instead
// of waiting for every node to hear of it.
type PositionStore interface {
	// Record stores lsn as the position of users and of the latest write,
	// before the write is answered. An error means it may be missing: the
	// store must then not claim to know positions (Need) until a new
	// floor has been taken.
	Record(ctx context.Context, lsn uint64, users []int64) error
	// Need returns the position a read by user must see (fresh: every
	// write's); ok is false when it cannot be known (the store is not
	// reachable, or lost positions and has no floor yet).
	Need(ctx context.Context, user int64, fresh bool) (lsn uint64, ok bool)
	// Floor is called on every check: if the store lost positions, it
	// takes current() (the primary's WAL position, read after the loss
	// was seen) as the floor of every position.
	Floor(ctx context.Context, current func(context.Context) (uint64, error)) error
}

// ReplicaStat is one read target's state, for metrics.
type ReplicaStat struct {
	Name string // host:port
	Up   bool   // answering, and a standby
	// Lag is how far behind the primary it is known to be (how long ago
	// the primary had written no more than it has replayed); negative if
	// unknown.
	Lag   time.Duration
	Reads uint64 // reads it served
}

// ReadStats counts where reads went.
type ReadStats struct {
	Replicas []ReplicaStat
	// Primary counts reads served by the primary, by why: "lag" (no replica
	// up and within the cut-off), "position" (the user's last write not yet
	// replayed), "fresh" (a fresh read ahead of the replicas), "unknown"
	// (positions may have been missed), "retry" (a replica failed).
	Primary map[string]uint64
}

// Why a read went to the primary.
type primaryReason int

const (
	viaReplica primaryReason = iota
	forLag
	forPosition
	forFresh
	forUnknown
	forLatest
	forRetry
	nReasons
)

var reasonNames = [nReasons]string{"", "lag", "position", "fresh", "unknown", "latest", "retry"}

// replica is one standby server and what is known of it.
type replica struct {
	name  string
	db    *sql.DB
	pool  *pgxpool.Pool
	reads atomic.Uint64

	mu        sync.Mutex
	up        bool
	replay    uint64    // replayed WAL position (from the last check or probe)
	freshAsOf time.Time // the primary had written no more than replay at this time
	probing   chan struct{}
}

// replicaSet routes reads between the primary and the replicas.
type replicaSet struct {
	primary  *sql.DB
	replicas []*replica
	maxLag   time.Duration
	interval time.Duration
	// pause is the wait before a read the primary failed, with no replica
	// able to take it, is tried on the primary again (see failed).
	pause time.Duration
	// primaryTry bounds a try on a primary believed down (see tryCtx).
	primaryTry time.Duration
	userOf     func(context.Context) int64
	bus        PositionBus
	store      PositionStore
	logger     *slog.Logger
	now        func() time.Time
	pos        *positions
	next       atomic.Uint64 // round robin over eligible replicas
	stop       context.CancelFunc
	done       chan struct{}

	mu        sync.Mutex
	primaryUp bool // set through markPrimary
	// upEnds ends when the primary is next marked down, so that the tries
	// on it begun while it was believed up are bounded from then on (see
	// tryCtx); nil until a try needs it, and again once it has ended.
	upEnds    context.Context
	endUp     context.CancelFunc
	primaryOK time.Time // last time the primary answered a sample
	history   []sample  // primary WAL positions, oldest first
	viaPrim   [nReasons]atomic.Uint64
}

type sample struct {
	at  time.Time
	lsn uint64
}

// AttachReplicas sends the reads that may lag to the replicas in o (see
// the comment at the top of replicas.go). Replicas need not be up: one
// that is down is skipped until it answers. Close stops them.
func (db *DB) AttachReplicas(ctx context.Context, o ReplicaOptions) error {
	if db.pool == nil {
		return errors.New("read replicas need PostgreSQL")
	}
	if db.replicas != nil {
		return errors.New("replicas already attached")
	}
	if o.MaxLag <= 0 {
		o.MaxLag = DefaultReplicaMaxLag
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = defaultCheckInterval
	}
	if o.UserOf == nil {
		o.UserOf = func(context.Context) int64 { return 0 }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// A write's position is the primary's WAL write position right after
	// its COMMIT returned, which covers the commit only if COMMIT waited
	// for it (pg_current_wal_insert_lsn would cover it always, but can
	// point past a page header that replicas reach only with more WAL).
	var syncCommit string
	bctx, cancel := db.bound(ctx)
	err := db.read.QueryRowContext(bctx, `SHOW synchronous_commit`).Scan(&syncCommit)
	cancel()
	if err != nil {
		return fmt.Errorf("check synchronous_commit: %w", db.mapErr(err))
	}
	if syncCommit == "off" {
		return errors.New("read replicas need synchronous_commit on the primary (it is off): read-your-writes positions would miss commits")
	}
	if o.Positions != nil {
		o.Bus = nil // positions live in the store; this node's floor is its own
	}
	s := &replicaSet{primary: db.read, maxLag: o.MaxLag, interval: o.CheckInterval, pause: primaryRetryPause, primaryTry: primaryTryLimit, userOf: o.UserOf,
		bus: o.Bus, store: o.Positions, logger: o.Logger, now: time.Now, pos: newPositions(o.Bus == nil), primaryUp: true}
	popts := o.Pool.withDefaults()
	for _, u := range o.URLs {
		cfgs, err := perHost(u, popts)
		if err != nil {
			s.close()
			return err
		}
		for _, cfg := range cfgs {
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				s.close()
				return fmt.Errorf("replica pool: %w", err)
			}
			name := fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
			s.replicas = append(s.replicas, &replica{name: name, pool: pool, db: stdlib.OpenDBFromPool(pool)})
		}
	}
	if len(s.replicas) == 0 {
		return errors.New("no replica URLs given")
	}
	if s.bus != nil {
		s.bus.Handle(positionsTopic, s.heard, s.busUp)
	}
	cctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.run(cctx)
	db.replicas = s
	return nil
}

// perHost parses url into one pool configuration per host it names.
func perHost(url string, o PostgresOptions) ([]*pgxpool.Config, error) {
	cfg, err := poolConfig(url, o)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "conduit-reader"
	// The first host and its fallbacks (several per host with
	// sslmode=prefer), grouped by host and port in their order.
	all := append([]*pgconn.FallbackConfig{{Host: cfg.ConnConfig.Host, Port: cfg.ConnConfig.Port, TLSConfig: cfg.ConnConfig.TLSConfig}},
		cfg.ConnConfig.Fallbacks...)
	var out []*pgxpool.Config
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].Host == all[i].Host && all[j].Port == all[i].Port {
			j++
		}
		c := cfg.Copy()
		c.ConnConfig.Host, c.ConnConfig.Port, c.ConnConfig.TLSConfig = all[i].Host, all[i].Port, all[i].TLSConfig
		c.ConnConfig.Fallbacks = append([]*pgconn.FallbackConfig(nil), all[i+1:j]...)
		out = append(out, c)
		i = j
	}
	return out, nil
}

func (s *replicaSet) close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	for _, r := range s.replicas {
		r.db.Close()
		r.pool.Close()
	}
}

// ---- routing ----

// route picks the server for a read made with ctx: a replica, or nil for
// the primary (and why).
func (s *replicaSet) route(ctx context.Context) (*replica, primaryReason) {
	if conduit.IsLatest(ctx) {
		return nil, forLatest // a background job's read (see conduit.Latest)
	}
	need, known, fresh := s.needs(ctx)
	r, why := s.choose(need, known, fresh)
	if why == forPosition || why == forFresh {
		// The last check may be a moment old: ask the most advanced
		// replica where it is now.
		if s.probe(ctx, need) {
			r, why = s.choose(need, known, fresh)
		}
	}
	return r, why
}

// needs is the position a read made with ctx must see, whether it can be
// trusted, and whether the read is a fresh one.
func (s *replicaSet) needs(ctx context.Context) (need uint64, known, fresh bool) {
	fresh = conduit.IsFresh(ctx)
	user := s.userOf(ctx)
	if user == 0 && !fresh {
		// Anonymous: the lag cut-off, and the schema this node runs on.
		return s.pos.schemaFloor(), true, false
	}
	need, known = s.pos.need(user, fresh)
	if s.store != nil {
		// This node's own positions above, and everyone's from the store.
		n, ok := s.store.Need(ctx, user, fresh)
		need, known = max(need, n), known && ok
	}
	return need, known, fresh
}

// choose picks an eligible replica round robin: up, within the lag
// cut-off, and replayed up to need. known is false when positions may have
// been missed: then the primary is tried first, even if it was down a
// moment ago (a new one may have taken writes this node has not heard
// of); only if it fails (see failed) do the positions known so far decide.
func (s *replicaSet) choose(need uint64, known, fresh bool) (*replica, primaryReason) {
	if !known {
		return nil, forUnknown
	}
	s.mu.Lock()
	up, ref := s.primaryUp, s.now()
	if !up {
		// No primary, nothing new committed: keep the lag replicas had
		// when it was last seen.
		ref = s.primaryOK
	}
	s.mu.Unlock()
	var eligible [8]*replica
	candidates := eligible[:0]
	usable := false
	for _, r := range s.replicas {
		ok, replay := r.usable(ref, s.maxLag)
		if !ok {
			continue
		}
		usable = true
		if replay >= need {
			candidates = append(candidates, r)
		}
	}
	switch {
	case len(candidates) > 0:
		return candidates[int(s.next.Add(1)%uint64(len(candidates)))], viaReplica
	case !usable:
		return nil, forLag
	case fresh:
		return nil, forFresh
	}
	return nil, forPosition
}

// usable reports whether r may serve reads lagging at most maxLag behind
// the primary as of ref, and how far it has replayed.
func (r *replica) usable(ref time.Time, maxLag time.Duration) (bool, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up && !r.freshAsOf.IsZero() && ref.Sub(r.freshAsOf) <= maxLag, r.replay
}

// probe asks the most advanced usable replica short of need for its replay
// position now, and reports whether it has reached need. Concurrent probes
// of one replica share one query.
func (s *replicaSet) probe(ctx context.Context, need uint64) bool {
	s.mu.Lock()
	ref := s.now()
	if !s.primaryUp {
		ref = s.primaryOK
	}
	s.mu.Unlock()
	var best *replica
	var bestAt uint64
	for _, r := range s.replicas {
		if ok, replay := r.usable(ref, s.maxLag); ok && (best == nil || replay > bestAt) {
			best, bestAt = r, replay
		}
	}
	if best == nil {
		return false
	}
	best.mu.Lock()
	wait := best.probing
	if wait == nil {
		wait = make(chan struct{})
		best.probing = wait
		best.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, s.interval)
		var lsn uint64
		err := best.db.QueryRowContext(pctx, `SELECT coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)`).Scan(&lsn)
		cancel()
		best.mu.Lock()
		if err == nil && lsn > best.replay {
			best.replay = lsn
		}
		best.probing = nil
		best.mu.Unlock()
		close(wait)
	} else {
		best.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return false
		}
	}
	best.mu.Lock()
	defer best.mu.Unlock()
	return best.replay >= need
}

// count records that a read went to r (nil: the primary, for why).
func (s *replicaSet) count(r *replica, why primaryReason) {
	if r != nil {
		r.reads.Add(1)
		return
	}
	s.viaPrim[why].Add(1)
}

// failed handles a read that failed on r (nil: the primary) with err, on
// its try-th try: the server is marked down if err says it is gone, and
// the read may be tried again elsewhere: on another replica, or the
// primary, or, when the primary failed, on a replica holding every
// position known here; or, when none holds them, on the primary again
// after a pause, while tries are left (a switchover).
func (s *replicaSet) failed(ctx context.Context, r *replica, err error, try int) (retry bool, to *replica) {
	if try >= readTries || ctx.Err() != nil || conduit.IsLatest(ctx) {
		// A job's read fails with the primary; the job is retried later.
		return false, nil
	}
	if r != nil && replayConflict(err) {
		// The replica cancelled the query to go on replaying: it is
		// fine, the query just needs a server that is not replaying.
		return true, nil
	}
	if !serverGone(err) {
		return false, nil
	}
	if r != nil {
		r.mu.Lock()
		r.up = false
		r.mu.Unlock()
		s.logger.Warn("read replica failed; skipping it", slog.String("replica", r.name), slog.Any("error", err))
		to, _ = s.route(ctx)
		return true, to
	}
	s.mu.Lock()
	s.markPrimary(false)
	s.mu.Unlock()
	// Without a primary nothing new commits: the positions known are all.
	need, _, fresh := s.needs(ctx)
	to, why := s.choose(need, true, fresh)
	if to == nil && (why == forPosition || why == forFresh) && s.probe(ctx, need) {
		to, _ = s.choose(need, true, fresh)
	}
	if to != nil {
		return true, to
	}
	t := time.NewTimer(time.Duration(try) * s.pause)
	defer t.Stop()
	select {
	case <-t.C:
		return true, nil
	case <-ctx.Done():
		return false, nil
	}
}

// tryCtx is the context of one try of a read on r (nil: the primary).
// A try on the primary is given up (its context cancelled) unless it has
// an answer within primaryTry of the primary being believed down: of its
// start if this node believes the primary down already, else of the
// moment it marks it down (a check or another read failed). answered
// stops that clock once the answer is in and reports whether it came in
// time; it must be called once the try's query call returns.
//
// Without the bound a read waits for the pool's connection attempts, and
// a demoted primary's last seconds (accepting connections it never
// answers, measured in the stage-4 drill) took every connection of the
// pool for the whole connect timeout, while replicas holding every
// position known here could have served the read. A try begun just
// before the primary went silent would wait as long, hence the clock
// that starts when the node marks it down.
func (s *replicaSet) tryCtx(ctx context.Context, r *replica) (tctx context.Context, answered func() bool) {
	if r != nil || s.primaryTry <= 0 {
		return ctx, func() bool { return true }
	}
	tctx, cancel := context.WithCancelCause(ctx)
	c := &tryClock{limit: s.primaryTry, cancel: cancel}
	s.mu.Lock()
	if s.primaryUp {
		if s.upEnds == nil {
			s.upEnds, s.endUp = context.WithCancel(context.Background())
		}
		// Registered under s.mu: markPrimary cannot end this epoch
		// between the look at primaryUp and the registration.
		c.unwatch = context.AfterFunc(s.upEnds, c.start)
	} else {
		c.start()
	}
	s.mu.Unlock()
	// A try answered in time keeps tctx until the read's own context
	// (its parent) ends with the read.
	return tctx, c.answered
}

// markPrimary records (s.mu held) whether the primary answers. Marking it
// down starts the clock of the tries on it in flight (see tryCtx).
func (s *replicaSet) markPrimary(up bool) {
	if up == s.primaryUp {
		return
	}
	s.primaryUp = up
	if !up && s.endUp != nil {
		s.endUp()
		s.upEnds, s.endUp = nil, nil
	}
}

// tryClock gives up one try on the primary (cancels its context with
// errPrimarySilent) limit after start, unless answered comes first.
type tryClock struct {
	limit   time.Duration
	cancel  context.CancelCauseFunc
	unwatch func() bool // stops start being called when the primary is marked down

	mu     sync.Mutex
	timer  *time.Timer
	over   bool // answered or given up
	silent bool // given up
}

func (c *tryClock) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.over {
		c.timer = time.AfterFunc(c.limit, c.giveUp)
	}
}

func (c *tryClock) giveUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.over {
		c.over, c.silent = true, true
		c.cancel(errPrimarySilent)
	}
}

// answered stops the clock and reports whether the answer came in time.
func (c *tryClock) answered() bool {
	if c.unwatch != nil {
		c.unwatch()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.over {
		c.over = true
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	return !c.silent
}

// on is the pool of r (nil: the primary's).
func (s *replicaSet) on(r *replica) *sql.DB {
	if r == nil {
		return s.primary
	}
	return r.db
}

// query runs a read where route sends it, and elsewhere (see failed) if
// that server turns out to be gone.
func (s *replicaSet) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	r, why := s.route(ctx)
	s.count(r, why)
	for try := 1; ; try++ {
		tctx, answered := s.tryCtx(ctx, r)
		rs, err := s.on(r).QueryContext(tctx, q, args...)
		if !answered() {
			if err == nil {
				rs.Close()
			}
			err = errPrimarySilent
		}
		if err == nil {
			return rs, nil
		}
		retry, to := s.failed(ctx, r, err, try)
		if !retry {
			return rs, err
		}
		s.count(to, forRetry)
		r = to
	}
}

// queryRow is query for one row: the row, and what to run each time its
// Scan fails (it returns nil when the failure does not call for another
// try).
func (s *replicaSet) queryRow(ctx context.Context, q string, args ...any) (*sql.Row, func(error) *sql.Row) {
	r, why := s.route(ctx)
	s.count(r, why)
	try := 1
	inTime := true
	run := func(on *replica) *sql.Row {
		tctx, answered := s.tryCtx(ctx, on)
		// The query has run (or failed) when QueryRowContext returns.
		row := s.on(on).QueryRowContext(tctx, q, args...)
		inTime = answered()
		return row
	}
	again := func(err error) *sql.Row {
		if !inTime {
			err = errPrimarySilent
		}
		retry, to := s.failed(ctx, r, err, try)
		if !retry {
			return nil
		}
		try++
		s.count(to, forRetry)
		r = to
		return run(to)
	}
	return run(r), again
}

// afterCommit records a committed write transaction's position (see
// replicaSet.wrote); without replicas it does nothing.
func (db *DB) afterCommit(ctx context.Context, t *sqlTx) error {
	if db.replicas == nil {
		return nil
	}
	return db.replicas.wrote(ctx, t.users...)
}

// primaryRow runs a one-row read on the primary whatever the replicas,
// for reads that decide a write (idempotency claims).
func (db *DB) primaryRow(ctx context.Context, q string, args ...any) row {
	ctx, cancel := db.bound(ctx)
	return row{Row: db.read.QueryRowContext(ctx, db.d.rebind(q), args...), cancel: cancel}
}

// primaryQuery is primaryRow for reads of several rows (sign-in attempt
// counters, which are written outside any transaction and so leave no
// read-your-writes position behind).
func (db *DB) primaryQuery(ctx context.Context, q string, args ...any) (rows, error) {
	ctx, cancel := db.bound(ctx)
	rs, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		cancel()
		return rows{}, db.mapErr(err)
	}
	return rows{rs, cancel}, nil
}

// serverGone reports errors that mean the server (or the way to it) is
// gone, rather than that the query was slow or wrong. The caller has
// checked that the request's own deadline has not passed, so a deadline
// here is the connect timeout's.
func serverGone(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "53")
	}
	return postgresUnavailable(err)
}

// replayConflict reports a query a standby cancelled because it
// conflicted with the WAL it had to replay (SQLSTATE 40001 on a standby).
func replayConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "40001"
}

// usableAny reports whether some replica can serve reads now.
func (s *replicaSet) usableAny() bool {
	r, why := s.choose(0, true, false)
	return r != nil || why != forLag
}

// ---- positions ----

// positions are the write positions this node knows: per user, and the
// highest of all.
type positions struct {
	mu     sync.Mutex
	users  map[int64]uint64
	floor  uint64 // every position not in users is at most this
	latest uint64 // the highest position heard of
	// known is false while positions may have been missed: before the
	// floor is taken after a (re)connect of the bus.
	known   bool
	busUp   bool
	pending uint64 // generation waiting for its floor (0: none)
	gen     uint64
	upAt    time.Time // when the bus last came up
	// schema is the first floor taken, after this node migrated the
	// schema: no read may see a replica from before its migrations.
	schema uint64
}

// schemaFloor is the position every read needs (see schema); before the
// first floor, the highest position heard of.
func (p *positions) schemaFloor() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.schema == 0 {
		return p.latest
	}
	return p.schema
}

// newPositions starts unknown; the floor is taken from the primary once
// the bus is up (at once without a bus).
func newPositions(noBus bool) *positions {
	p := &positions{users: map[int64]uint64{}, busUp: noBus}
	if noBus {
		p.gen, p.pending = 1, 1
	}
	return p
}

// need is the position a read must see: the user's own (or, for a fresh
// read, every write heard of), and whether it can be trusted.
func (p *positions) need(user int64, fresh bool) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.floor
	if fresh {
		n = max(n, p.latest)
	} else if u, ok := p.users[user]; ok {
		n = max(n, u)
	}
	return n, p.known
}

// note records a write at lsn by users (none: an anonymous write).
func (p *positions) note(lsn uint64, users ...int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latest = max(p.latest, lsn)
	for _, u := range users {
		if u == 0 {
			continue
		}
		if len(p.users) >= maxTracked {
			for _, v := range p.users {
				p.floor = max(p.floor, v)
			}
			clear(p.users)
		}
		p.users[u] = max(p.users[u], lsn)
	}
}

// setBus follows the bus: on every connect a floor must be taken again,
// busSettle after the connect.
func (p *positions) setBus(up bool, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.busUp, p.known, p.pending, p.upAt = up, false, 0, now
	if up {
		p.pending = p.gen
	}
}

// waiting returns the generation that needs a floor now (0: none, or not
// yet). The floor must be read from the primary after this call.
func (p *positions) waiting(now time.Time) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.upAt.IsZero() && now.Sub(p.upAt) < busSettle {
		return 0
	}
	return p.pending
}

// establish sets the floor read for generation gen.
func (p *positions) establish(gen, lsn uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen == 0 || gen != p.pending {
		return
	}
	p.floor = max(p.floor, lsn)
	p.latest = max(p.latest, lsn)
	p.pending, p.known = 0, true
	if p.schema == 0 {
		p.schema = lsn
	}
}

// prune forgets the positions every replica has replayed (at or below
// lsn); the floor rises to lsn, which is still true of them.
func (p *positions) prune(lsn uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.users) == 0 || lsn <= p.floor {
		return
	}
	for u, v := range p.users {
		if v <= lsn {
			delete(p.users, u)
		}
	}
	p.floor = lsn
}

// wrote records a committed write by users (the request's user and any
// given) and tells the other nodes, before the write is answered.
func (s *replicaSet) wrote(ctx context.Context, users ...int64) error {
	if u := s.userOf(ctx); u != 0 {
		users = append(users, u)
	}
	var lsn uint64
	if err := s.primary.QueryRowContext(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&lsn); err != nil {
		// Committed, but nobody could be told where: the client must not
		// take it as acknowledged (a retry with its key is answered from
		// the stored response or as already applied).
		return err
	}
	s.pos.note(lsn, users...)
	if s.store != nil {
		if err := s.store.Record(ctx, lsn, users); err != nil {
			// The store now distrusts its positions (reads needing one go
			// to the primary) until it has a new floor: the write can be
			// answered.
			s.logger.Warn("read-your-writes position not recorded", slog.Any("error", err))
		}
	}
	if s.bus != nil {
		msg := strconv.FormatInt(s.now().UnixMilli(), 10) + " " + strconv.FormatUint(lsn, 10)
		for _, u := range users {
			msg += " " + strconv.FormatInt(u, 10)
		}
		s.bus.Broadcast(ctx, positionsTopic, msg)
	}
	return nil
}

// primaryPosition is the primary's WAL position now.
func (s *replicaSet) primaryPosition(ctx context.Context) (uint64, error) {
	var lsn uint64
	err := s.primary.QueryRowContext(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&lsn)
	return lsn, err
}

// heard takes a position broadcast by another node: "sent lsn user
// user…", sent in Unix milliseconds.
func (s *replicaSet) heard(msg string) {
	f := strings.Fields(msg)
	if len(f) < 2 {
		return
	}
	sent, err1 := strconv.ParseInt(f[0], 10, 64)
	lsn, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	if now := s.now(); now.Sub(time.UnixMilli(sent)) > lateAfter {
		// Heard this late, the writer may have stopped waiting for this
		// node: positions it did not wait to tell may be missing. Take a
		// new floor, as after a reconnect.
		s.logger.Warn("read-your-writes position arrived late; taking a new floor", slog.Duration("late", now.Sub(time.UnixMilli(sent))))
		s.pos.setBus(true, now)
	}
	users := make([]int64, 0, len(f)-2)
	for _, x := range f[2:] {
		if u, err := strconv.ParseInt(x, 10, 64); err == nil {
			users = append(users, u)
		}
	}
	s.pos.note(lsn, users...)
}

func (s *replicaSet) busUp(up bool) { s.pos.setBus(up, s.now()) }

// ---- checks ----

// run samples the primary and the replicas every interval until stopped.
func (s *replicaSet) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check takes one sample: the primary's position first, then every
// replica's (so a replica that has replayed the sample holds everything
// committed before it was taken).
func (s *replicaSet) check(ctx context.Context) {
	timeout := max(time.Second, 2*s.interval)
	gen := s.pos.waiting(s.now())
	at := s.now()
	var lsn uint64
	pctx, cancel := context.WithTimeout(ctx, timeout)
	err := s.primary.QueryRowContext(pctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&lsn)
	cancel()
	s.mu.Lock()
	if err == nil {
		if !s.primaryUp {
			s.logger.Info("primary answers again")
		}
		s.markPrimary(true)
		s.primaryOK = at
		if n := len(s.history); n > 0 && lsn < s.history[n-1].lsn {
			// A new primary (failover) may be behind the old one's last
			// unacknowledged WAL: start its history afresh.
			s.history = s.history[:0]
		}
		s.history = append(s.history, sample{at, lsn})
		// Keep the samples that can matter: the newest one older than the
		// cut-off and everything after it.
		for len(s.history) > 2 && at.Sub(s.history[1].at) > s.maxLag {
			s.history = s.history[1:]
		}
	} else if s.primaryUp && ctx.Err() == nil {
		s.markPrimary(false)
		s.logger.Warn("primary does not answer; reads go to replicas with the positions known", slog.Any("error", err))
	}
	history := append([]sample(nil), s.history...)
	s.mu.Unlock()
	if err == nil {
		s.pos.establish(gen, lsn)
		if s.store != nil {
			fctx, cancel := context.WithTimeout(ctx, timeout)
			if err := s.store.Floor(fctx, s.primaryPosition); err != nil && ctx.Err() == nil {
				s.logger.Debug("read-your-writes floor", slog.Any("error", err))
			}
			cancel()
		}
	}

	var wg sync.WaitGroup
	for _, r := range s.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.checkReplica(ctx, r, history, timeout)
		}()
	}
	wg.Wait()

	// Forget positions every replica that is up has replayed.
	var low uint64
	found := false
	for _, r := range s.replicas {
		r.mu.Lock()
		if r.up && (!found || r.replay < low) {
			low, found = r.replay, true
		}
		r.mu.Unlock()
	}
	if found {
		s.pos.prune(low)
	}
}

func (s *replicaSet) checkReplica(ctx context.Context, r *replica, history []sample, timeout time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var standby bool
	var replay uint64
	err := r.db.QueryRowContext(cctx, `SELECT pg_is_in_recovery(), coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)`).
		Scan(&standby, &replay)
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.up
	r.up = err == nil && standby
	if !r.up {
		if was && ctx.Err() == nil {
			reason := "not a standby (promoted?)"
			if err != nil {
				reason = err.Error()
			}
			s.logger.Warn("read replica unusable; skipping it", slog.String("replica", r.name), slog.String("reason", reason))
		}
		return
	}
	if !was {
		s.logger.Info("read replica answers", slog.String("replica", r.name))
	}
	// What it says now, even if a probe saw more a moment ago or it went
	// back (rewound, rebuilt): lower is only more careful.
	r.replay = replay
	if len(history) == 0 {
		return // no primary sample yet (or since a failover): keep what was known
	}
	// Fresh as of the newest primary sample it has replayed; older than
	// every sample kept means further behind than the cut-off.
	r.freshAsOf = time.Time{}
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].lsn <= replay {
			r.freshAsOf = history[i].at
			return
		}
	}
}

// stats returns what metrics show.
func (s *replicaSet) stats() ReadStats {
	st := ReadStats{Primary: map[string]uint64{}}
	s.mu.Lock()
	ref := s.now()
	if !s.primaryUp {
		ref = s.primaryOK
	}
	s.mu.Unlock()
	for _, r := range s.replicas {
		r.mu.Lock()
		lag := time.Duration(-1)
		if r.up && !r.freshAsOf.IsZero() {
			lag = max(0, ref.Sub(r.freshAsOf))
		}
		st.Replicas = append(st.Replicas, ReplicaStat{Name: r.name, Up: r.up, Lag: lag, Reads: r.reads.Load()})
		r.mu.Unlock()
	}
	for why := forLag; why < nReasons; why++ {
		st.Primary[reasonNames[why]] = s.viaPrim[why].Load()
	}
	return st
}

// ReadStats reports where reads went and the replicas' state; nil without
// replicas.
func (db *DB) ReadStats() *ReadStats {
	if db.replicas == nil {
		return nil
	}
	st := db.replicas.stats()
	return &st
}
