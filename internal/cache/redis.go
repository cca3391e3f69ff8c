package cache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/trace"
)

// Redis is conduit.Cache on a Redis server shared by every node, with a
// near cache in each node's memory that Redis itself keeps coherent
// (RESP3 client-side caching: the server remembers which keys a
// connection read and pushes an invalidation when one changes; rueidis
// keeps the values and drops them on those pushes, and drops them all
// when the connection breaks). docs/stage5.md has the design.
//
// Keys under the prefix (default "conduit:"):
//
//	c:<key>  the value, "<generation>:<bytes>"; "" is a tombstone
//	l:<key>  a fill lease, "<generation>:<token>" (GetOrLoad)
//	gen      the generation: values stamped with another one are misses
//
// Redis never holds anything that is not also in the database: losing it
// costs misses, nothing else. Every call has a short timeout; failures
// open a circuit breaker and the node reads from the database until the
// heartbeat finds Redis answering again.
type Redis struct {
	o      RedisOptions
	url    rueidis.ClientOption
	logger *slog.Logger
	now    func() time.Time
	health *health
	m      *redisMetrics

	client atomic.Pointer[clientBox]
	connMu sync.Mutex // one connection attempt at a time

	flights flightGroup
	fences  fencer

	watchMu sync.Mutex
	watches []prefixWatch
	// arming counts watched keys being (re)tracked: until Redis has
	// answered their read, a change to them is not pushed here, so Sync
	// says no (see startRearm).
	arming atomic.Int64

	hits, misses, nearHits atomic.Uint64

	tracer trace.Tracer // nil: no spans (tracing.go)

	stop context.CancelFunc
	done chan struct{}
}

type clientBox struct{ c rueidis.Client }

// RedisOptions configures NewRedis; zero values take the defaults.
type RedisOptions struct {
	// Prefix of every key (default "conduit:").
	Prefix string
	// Timeout of a read (default 10 ms). Invalidations and fills get at
	// least 100 ms, and invalidations are retried (see Delete).
	Timeout time.Duration
	// NearBytes bounds the near cache (default 64 MiB).
	NearBytes int
	// Hold is how long Delete blocks a plain Set of the key (default
	// 2 s), as in Memory. GetOrLoad does not need it: its fill lease is
	// cancelled by the Delete instead.
	Hold time.Duration
	// Lease is how long one successful round trip vouches for the near
	// cache (default 500 ms); also the longest a write waits when its
	// invalidation cannot reach Redis.
	Lease time.Duration
	// FillLease is how long one node may take to fill a key while the
	// others wait for it (default 1 s).
	FillLease time.Duration
	// Heartbeat is the interval of the health probe (default 100 ms).
	Heartbeat time.Duration
	// Fence is how recent a round trip to Redis must be for a near-cache
	// hit to be served, and how long a writer waits after its
	// invalidation was answered (default 1 ms; see fence.go).
	Fence time.Duration
	// Registerer, if set, gets the cache's metrics.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Tracer, if not nil, records a span per call to Redis made for a
	// traced request (tracing.go).
	Tracer trace.TracerProvider
}

func (o *RedisOptions) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Prefix == "" {
		o.Prefix = "conduit:"
	}
	if o.NearBytes <= 0 {
		o.NearBytes = 64 << 20
	}
	def(&o.Timeout, 10*time.Millisecond)
	def(&o.Hold, 2*time.Second)
	def(&o.Lease, 500*time.Millisecond)
	def(&o.FillLease, time.Second)
	def(&o.Heartbeat, 100*time.Millisecond)
	def(&o.Fence, time.Millisecond)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// writeTimeout bounds one attempt to invalidate (or to fill, lock, or
// record a position): writes are rarer than reads and an invalidation that
// times out costs a wait, so it gets more time than a read.
const writeTimeout = 100 * time.Millisecond

// writeWait is writeTimeout, or the read timeout when that is longer (a
// test under load sets a long one): a write never gets less time than a
// read.
func (r *Redis) writeWait() time.Duration { return max(writeTimeout, r.o.Timeout) }

// nearTTL bounds how long the near cache keeps a value; Redis's own
// expiry of the key (PTTL) bounds it too.
const nearTTL = 5 * time.Minute

// NewRedis returns a cache on the Redis server at url (redis://…). It
// connects in the background: until Redis answers, every read misses and
// the node works from the database. Close stops it.
func NewRedis(url string, o RedisOptions) (*Redis, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cache url: %w", err)
	}
	o.defaults()
	r := &Redis{o: o, url: opt, logger: o.Logger, now: time.Now}
	r.health = newHealth(o.Lease, r.now)
	r.m = newRedisMetrics(o.Registerer, r.health.isOpen)
	if o.Tracer != nil {
		r.tracer = o.Tracer.Tracer("github.com/conduit-dev/conduit/internal/cache")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan struct{})
	go r.heartbeat(ctx)
	return r, nil
}

// Close stops the heartbeat and closes the connection.
func (r *Redis) Close() {
	r.stop()
	<-r.done
	if b := r.client.Load(); b != nil {
		b.c.Close()
	}
}

func (r *Redis) valKey(key string) string   { return r.o.Prefix + "c:" + key }
func (r *Redis) leaseKey(key string) string { return r.o.Prefix + "l:" + key }
func (r *Redis) genKey() string             { return r.o.Prefix + "gen" }

// cli returns the client if the node may use the cache now.
func (r *Redis) cli() rueidis.Client {
	b := r.client.Load()
	if b == nil || !r.health.usable() {
		return nil
	}
	return b.c
}

// Get returns the value under key: from the near cache when this node
// read it before and nothing changed it since, else from Redis.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool) {
	v, ok := r.get(ctx, key)
	if ok {
		r.hits.Add(1)
	} else {
		r.misses.Add(1)
	}
	return v, ok
}

func (r *Redis) get(ctx context.Context, key string) ([]byte, bool) {
	kind := kindOf(key)
	c := r.cli()
	if c == nil {
		r.m.bypassed.WithLabelValues(kind).Inc()
		return nil, false
	}
	ctx, end := r.span(ctx, "get")
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	sent := r.now()
	// Before anything is read from the near cache: every invalidation of
	// a write acknowledged before this read must have been applied.
	if err := r.fence(ctx, c); err != nil {
		end(err) // the fence's own call recorded the failure
		r.m.errors.WithLabelValues("get").Inc()
		return nil, false
	}
	resps := c.DoMultiCache(ctx,
		rueidis.CT(c.B().Get().Key(r.genKey()).Cache(), nearTTL),
		rueidis.CT(c.B().Get().Key(r.valKey(key)).Cache(), nearTTL))
	r.m.observe("get", sent, r.now())
	gen, err1 := resps[0].ToString()
	val, err2 := resps[1].ToString()
	e := errors.Join(notNil(err1), notNil(err2))
	end(e)
	if e != nil {
		r.health.fail(sent)
		r.m.errors.WithLabelValues("get").Inc()
		return nil, false
	}
	if !resps[0].IsCacheHit() || !resps[1].IsCacheHit() {
		// A round trip: it vouches for the near cache (the lease) and
		// serves as a fence. Hits from memory prove nothing about Redis.
		r.health.ok(sent)
	}
	tier := "redis"
	if resps[1].IsCacheHit() {
		tier = "near"
		if _, ok := unstamp(val, gen); ok {
			r.nearHits.Add(1)
		}
	} else {
		r.m.lookups.WithLabelValues("near", kind, "miss").Inc()
	}
	v, ok := unstamp(val, gen)
	result := "miss"
	if ok {
		result = "hit"
	}
	r.m.lookups.WithLabelValues(tier, kind, result).Inc()
	return v, ok
}

// notNil drops rueidis's "no such key" error, which is a normal miss.
func notNil(err error) error {
	if rueidis.IsRedisNil(err) {
		return nil
	}
	return err
}

// unstamp returns the bytes of a stored value if it belongs to generation
// gen ("" for a Redis without one yet means "0").
func unstamp(stored, gen string) ([]byte, bool) {
	if gen == "" {
		gen = "0"
	}
	g, v, ok := strings.Cut(stored, ":")
	if !ok || g != gen {
		return nil, false
	}
	return []byte(v), true
}

var setScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == '' then return 0 end
local g = redis.call('GET', KEYS[2]) or '0'
redis.call('SET', KEYS[1], g .. ':' .. ARGV[1], 'PX', ARGV[2])
return 1`)

// Set stores value under key for ttl, unless key was deleted a moment ago
// (Hold), like Memory.Set, and returns when every node's next read sees it.
// Errors are ignored: a value not stored is a later miss.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) {
	c := r.cli()
	if c == nil {
		return
	}
	err := r.call(ctx, "set", r.o.Timeout, func(ctx context.Context) error {
		return setScript.Exec(ctx, c, []string{r.valKey(key), r.genKey()},
			[]string{string(value), ms(ttl)}).Error()
	})
	if err == nil {
		// A Set changes what other nodes read (a rendering stored for all):
		// like a Delete, it returns only Fence after the reply, so that a
		// read on any node that begins afterwards sees it (fence.go). Under
		// load, without this, another node read its near copy of the miss.
		r.waitFence(r.now())
	}
}

// call runs one Redis call with a timeout and records its latency and
// outcome.
func (r *Redis) call(ctx context.Context, op string, timeout time.Duration, fn func(context.Context) error) error {
	ctx, end := r.span(ctx, op)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sent := r.now()
	err := notNil(fn(ctx))
	end(err)
	r.m.observe(op, sent, r.now())
	if err != nil {
		r.health.fail(sent)
		r.m.errors.WithLabelValues(op).Inc()
		return err
	}
	r.health.ok(sent)
	return nil
}

func ms(d time.Duration) string { return strconv.FormatInt(max(d.Milliseconds(), 1), 10) }

// The tombstone is a write even when the key holds nothing, so every node
// that read the key hears of it (a DEL of a missing key is silent). Each
// key's tombstone lives for its own time in milliseconds, ARGV[i]: see
// watchedKeyLife.
var deleteScript = rueidis.NewLuaScript(`
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], '', 'PX', ARGV[(i + 1) / 2])
  redis.call('DEL', KEYS[i + 1])
end
return 1`)

// watchedKeyLife is how long the tombstone of a watched key lives (see
// WatchPrefix). Such a key holds no value, so the hold that keeps a stale
// Set out does nothing for it, and the expiry of its tombstone is a change
// like any other: Redis pushes it to every node tracking the key, whose
// watch then heard of the same write a second time, the hold after it
// (the list ledger dropped the pages built since, once per write). A day
// makes that a rare, harmless invalidation.
const watchedKeyLife = 24 * time.Hour

// Delete invalidates keys in Redis, which tells every node's near cache;
// it also cancels fills in progress (their leases), so a value loaded
// before the write is never stored after it.
//
// When Redis does not answer, Delete retries and returns once the
// invalidation has landed or, at the latest, when no node can still be
// serving near-cache hits from before Redis stopped answering (the
// lease; see health). In that case the invalidation may be lost: the node
// stops using the cache and starts a new generation in Redis as soon as
// it answers again, so nothing written meanwhile is read stale.
func (r *Redis) Delete(ctx context.Context, keys ...string) {
	if len(keys) == 0 {
		return
	}
	args := make([]string, 0, 2*len(keys))
	lives := make([]string, 0, len(keys))
	hold, watched := ms(r.o.Hold), ms(watchedKeyLife)
	for _, k := range keys {
		args = append(args, r.valKey(k), r.leaseKey(k))
		if r.watched(k) {
			lives = append(lives, watched)
		} else {
			lives = append(lives, hold)
		}
	}
	start := r.now()
	for {
		if b := r.client.Load(); b != nil {
			var answered time.Time
			err := r.call(context.WithoutCancel(ctx), "delete", r.writeWait(), func(ctx context.Context) error {
				if err := deleteScript.Exec(ctx, b.c, args, lives).Error(); err != nil {
					return err
				}
				answered = r.now()
				// Redis pushes the invalidation of our own connection's
				// near cache right after the script's reply; once the
				// reply to one more command is here, that push has been
				// applied, so this node's next read is fresh too.
				return b.c.Do(ctx, b.c.B().Ping().Build()).Error()
			})
			if err == nil {
				// Other nodes: a read that begins after this write is
				// answered fences behind it (fence.go).
				r.waitFence(answered)
				return
			}
		}
		if !r.now().Before(r.health.waitUntil(start)) {
			r.health.giveUp()
			r.logger.Warn("cache invalidation did not reach Redis; the cache is bypassed until Redis answers again and a new generation starts",
				slog.Int("keys", len(keys)))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WatchPrefix calls fn(key) whenever a key under prefix is deleted on any
// node, and fn("") whenever any of them may have been deleted unseen:
// when the connection to Redis breaks (invalidations may have been
// missed), when a new generation starts, on every heartbeat while the
// cache is not usable, and once keys are tracked (what was kept before
// the watch must go). It lets state kept outside the cache (the list
// caches) follow the same invalidations.
//
// Redis pushes a change only to a connection that read the key, so this
// node hears of the keys it tracks: keys, each of which must be under
// prefix, read all at once now and again after every reconnect (see arm).
func (r *Redis) WatchPrefix(prefix string, keys iter.Seq[string], fn func(key string)) {
	w := prefixWatch{prefix: prefix, keys: keys, fn: fn}
	r.watchMu.Lock()
	r.watches = append(r.watches, w)
	r.watchMu.Unlock()
	r.startRearm(keys, func() { fn("") })
}

// watched reports whether key is under a watched prefix.
func (r *Redis) watched(key string) bool {
	for _, w := range r.watching() {
		if strings.HasPrefix(key, w.prefix) {
			return true
		}
	}
	return false
}

// watching returns the watches. They are only ever appended to, so the
// slice needs the lock only to be read.
func (r *Redis) watching() []prefixWatch {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	return r.watches
}

// arm reads keys through the near cache, which makes Redis track them for
// this connection: their next change is pushed here. One pipelined round
// trip per 512 of them (the list caches watch sixteen thousand), each
// bounded by one timeout, from the key at index from on. It reports
// whether Redis answered every read (then every key is tracked) and up to
// which index the keys are tracked.
func (r *Redis) arm(keys iter.Seq[string], from int) (armed int, ok bool) {
	b := r.client.Load()
	if b == nil {
		return from, false
	}
	// In chunks: a pipeline of the ledger's sixteen thousand reads at once
	// held the one connection long enough for the first cache reads and
	// heartbeats after a start to time out (the breaker opened).
	const chunk = 512
	armed = from
	cmds := make([]rueidis.CacheableTTL, 0, chunk)
	send := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, res := range b.c.DoMultiCache(ctx, cmds...) {
			if err := res.Error(); err != nil && !rueidis.IsRedisNil(err) {
				return false
			}
		}
		armed += len(cmds)
		cmds = make([]rueidis.CacheableTTL, 0, chunk)
		return true
	}
	i := 0
	for k := range keys {
		if i++; i <= from {
			continue
		}
		cmds = append(cmds, rueidis.CT(b.c.B().Get().Key(r.valKey(k)).Cache(), nearTTL))
		if len(cmds) == chunk && !send() {
			return armed, false
		}
	}
	return armed, len(cmds) == 0 || send()
}

// startRearm counts keys as arming at once (the caller may be the
// connection's reader, handling a push: the count is up before any later
// reply is handed on) and rearms them in the background, then calls
// fired. While any key is arming, Sync says no: a change to it between
// its push (or its WatchPrefix) and Redis's answer to the new read is not
// pushed, and a list page served meanwhile could show a write
// acknowledged in that gap. The second fire (fired) drops what was kept
// before; the count keeps anything from being served or kept until then.
// Before, the list pages lived 1 s, which bounded such a miss; now they
// may live the value ttl.
func (r *Redis) startRearm(keys iter.Seq[string], fired func()) {
	r.arming.Add(1)
	go func() {
		defer r.arming.Add(-1)
		r.rearm(keys, fired)
	}()
}

// rearmAll tracks every watched key again, then tells each watch that
// anything may have changed.
func (r *Redis) rearmAll() {
	for _, w := range r.watching() {
		r.startRearm(w.keys, func() { w.fn("") })
	}
}

// fireAll tells every watch that any of its keys may have changed.
func (r *Redis) fireAll() {
	for _, w := range r.watching() {
		w.fn("")
	}
}

// rearm tracks keys again and then calls fired, which tells their
// watchers once more: a change made between the push and the new read was
// not pushed, and anything loaded meanwhile must not be kept.
//
// It tries until Redis has answered every read: a key that is not tracked
// would never tell this node of a change. A retry goes on from the first
// read not answered (starting the sixteen thousand over after each
// timed-out chunk could keep a loaded node out of sync for long): the keys
// before it stay tracked while the connection lasts, and a broken
// connection rearms everything again. It gives up when the cache is
// closed.
func (r *Redis) rearm(keys iter.Seq[string], fired func()) {
	for armed, ok := r.arm(keys, 0); !ok; armed, ok = r.arm(keys, armed) {
		select {
		case <-r.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	fired()
}

// onInvalidations runs on the connection's reader (it must be quick):
// nil means the connection broke (rueidis has dropped the near cache).
func (r *Redis) onInvalidations(msgs []rueidis.RedisMessage) {
	if msgs == nil {
		// Arming first: Sync says no before the watchers hear of it.
		r.rearmAll()
		r.fireAll()
		return
	}
	prefix := r.valKey("")
	watches := r.watching()
	for _, m := range msgs {
		k, err := m.ToString()
		if err != nil {
			continue
		}
		if k == r.genKey() {
			r.fireAll()
			continue
		}
		key, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		for _, w := range watches {
			if strings.HasPrefix(key, w.prefix) {
				w.fn(key)
				r.startRearm(slices.Values([]string{key}), func() { w.fn(key) })
			}
		}
	}
}

// heartbeat connects, probes Redis every Heartbeat, closes the breaker
// when Redis answers (after starting a new generation if invalidations
// may have been lost) and notices when the near cache's lease runs out.
func (r *Redis) heartbeat(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.o.Heartbeat)
	defer t.Stop()
	for {
		r.beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Redis) beat(ctx context.Context) {
	if r.health.lapsed() {
		r.logger.Warn("Redis has not answered for the near cache's lease; reading from the database until it does")
	}
	if !r.health.usable() {
		r.fireAll() // other nodes' writes may not reach this node now
	}
	b := r.client.Load()
	if b == nil {
		sent := r.now()
		if b = r.connect(); b == nil {
			r.health.fail(sent)
			return
		}
	}
	probe := r.o.Lease / 2
	sent := r.now()
	if err := r.call(ctx, "ping", probe, func(ctx context.Context) error {
		return b.c.Do(ctx, b.c.B().Ping().Build()).Error()
	}); err != nil {
		return
	}
	dirt := r.health.needBump()
	if dirt > 0 {
		if err := r.bump(ctx, b.c, probe); err != nil {
			return
		}
	}
	wasOpen := r.health.isOpen()
	r.health.recovered(sent, dirt)
	if wasOpen && r.health.usable() {
		r.logger.Info("using the Redis cache again")
		r.rearmAll()
		r.fireAll()
	}
}

// connect creates the client; rueidis reconnects by itself afterwards.
func (r *Redis) connect() *clientBox {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if b := r.client.Load(); b != nil {
		return b
	}
	opt := r.url
	opt.DisableRetry = true
	opt.PipelineMultiplex = -1 // one connection: one near cache, ordered pushes
	opt.CacheSizeEachConn = r.o.NearBytes
	opt.ConnWriteTimeout = time.Second
	opt.Dialer.Timeout = r.o.Lease
	opt.OnInvalidations = r.onInvalidations
	c, err := rueidis.NewClient(opt)
	if err != nil {
		r.logger.Debug("connecting to Redis", slog.Any("error", err))
		return nil
	}
	b := &clientBox{c: c}
	r.client.Store(b)
	return b
}

// bump starts a new generation: every value stored before is a miss from
// now on, on every node. It waits until this node's near cache has seen
// the new generation (the push follows the reply).
func (r *Redis) bump(ctx context.Context, c rueidis.Client, timeout time.Duration) error {
	var n int64
	if err := r.call(ctx, "bump", timeout, func(ctx context.Context) (err error) {
		n, err = c.Do(ctx, c.B().Incr().Key(r.genKey()).Build()).AsInt64()
		return err
	}); err != nil {
		return err
	}
	r.m.bumps.Inc()
	r.logger.Info("started a new cache generation", slog.Int64("generation", n))
	for range 50 {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		g, err := c.DoCache(cctx, c.B().Get().Key(r.genKey()).Cache(), nearTTL).AsInt64()
		cancel()
		if err == nil && g >= n {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("the near cache did not see the new generation")
}

// Stats returns the hit and miss counts of Get since start (both tiers).
func (r *Redis) Stats() (hits, misses uint64) { return r.hits.Load(), r.misses.Load() }

// NearHits is how many of the hits were served from the near cache.
func (r *Redis) NearHits() uint64 { return r.nearHits.Load() }

// Usable reports whether the node uses the cache now (breaker closed,
// near cache vouched for); for tests and health pages.
func (r *Redis) Usable() bool { return r.cli() != nil }

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}
