package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// fetchScript returns the value of the current generation ("v", value),
// or takes the fill lease ("l", lease) or reports it taken ("w", "").
var fetchScript = rueidis.NewLuaScript(`
local g = redis.call('GET', KEYS[3]) or '0'
local v = redis.call('GET', KEYS[1])
if v then
  local p = string.find(v, ':', 1, true)
  if p and string.sub(v, 1, p - 1) == g then return {'v', string.sub(v, p + 1)} end
end
local lease = g .. ':' .. ARGV[1]
if redis.call('SET', KEYS[2], lease, 'NX', 'PX', ARGV[2]) then return {'l', lease} end
return {'w', ''}`)

// fillScript stores a loaded value if the lease is still the filler's: a
// Delete since (a write) or a new generation cancels it.
var fillScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
local g = redis.call('GET', KEYS[3]) or '0'
if string.sub(ARGV[1], 1, #g + 1) ~= g .. ':' then return 0 end
redis.call('SET', KEYS[1], g .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1`)

// releaseScript gives up a lease whose load failed, so others need not
// wait for it to expire.
var releaseScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// pollEvery is how often a node waiting for another node's fill looks.
const pollEvery = 5 * time.Millisecond

// GetOrLoad returns the value under key, or loads it once however many
// readers miss at the same moment: one load per key on this node
// (single flight), and across nodes one holder of a short lease in Redis;
// the others wait for its value (up to twice FillLease, then load
// themselves). Errors of load are returned and not cached. When the cache
// is not usable, load runs directly (still once per key per node).
func (r *Redis) GetOrLoad(ctx context.Context, key string, ttl time.Duration, load func() ([]byte, error)) ([]byte, error) {
	if v, ok := r.Get(ctx, key); ok {
		return v, nil
	}
	v, err, shared := r.flights.do(key, func() ([]byte, error) { return r.fill(ctx, key, ttl, load) })
	if shared && err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// The request that led the flight went away; this one did not.
		return load()
	}
	return v, err
}

func (r *Redis) fill(ctx context.Context, key string, ttl time.Duration, load func() ([]byte, error)) ([]byte, error) {
	kind := kindOf(key)
	keys := []string{r.valKey(key), r.leaseKey(key), r.genKey()}
	token := randomToken()
	giveUp := r.now().Add(2 * r.o.FillLease)
	for {
		c := r.cli()
		if c == nil {
			r.m.loads.WithLabelValues(kind, "bypass").Inc()
			return load()
		}
		var got []string
		err := r.call(ctx, "fetch", r.o.Timeout, func(ctx context.Context) (err error) {
			got, err = scriptStrings(ctx, c, fetchScript, keys, []string{token, ms(r.o.FillLease)})
			return err
		})
		if err != nil || len(got) != 2 {
			r.m.loads.WithLabelValues(kind, "error").Inc()
			return load()
		}
		switch got[0] {
		case "v":
			r.m.lookups.WithLabelValues("redis", kind, "hit").Inc()
			return []byte(got[1]), nil
		case "l":
			r.m.loads.WithLabelValues(kind, "lease").Inc()
			v, err := load()
			lease := got[1]
			if err != nil {
				r.call(context.WithoutCancel(ctx), "release", r.writeWait(), func(ctx context.Context) error {
					return releaseScript.Exec(ctx, c, keys[1:2], []string{lease}).Error()
				})
				return nil, err
			}
			r.call(context.WithoutCancel(ctx), "fill", r.writeWait(), func(ctx context.Context) error {
				return fillScript.Exec(ctx, c, keys, []string{lease, string(v), ms(ttl)}).Error()
			})
			return v, nil
		}
		// Another node is loading it.
		if r.now().After(giveUp) {
			r.m.loads.WithLabelValues(kind, "wait_expired").Inc()
			return load()
		}
		r.m.leaseWaits.WithLabelValues(kind).Inc()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// flightGroup runs one call per key at a time; callers share its result.
// A caller only shares the result of a call that began after the caller
// came: a call already running may have read the database before a write
// that the caller must see (it was acknowledged before the caller came).
// So a caller that finds a call running waits for it to end, then starts
// or joins the next one, which began after it came. In a stampede that
// costs each node one more call, which finds the value the first one
// stored in Redis.
type flightGroup struct {
	mu  sync.Mutex
	seq uint64 // calls started so far
	m   map[string]*flight
}

type flight struct {
	seq  uint64
	done chan struct{}
	val  []byte
	err  error
}

func (g *flightGroup) do(key string, fn func() ([]byte, error)) (v []byte, err error, shared bool) {
	g.mu.Lock()
	arrived := g.seq
	for {
		f, ok := g.m[key]
		if !ok {
			break
		}
		g.mu.Unlock()
		<-f.done
		if f.seq > arrived {
			return f.val, f.err, true
		}
		g.mu.Lock()
	}
	if g.m == nil {
		g.m = map[string]*flight{}
	}
	g.seq++
	f := &flight{seq: g.seq, done: make(chan struct{})}
	g.m[key] = f
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(f.done)
	}()
	f.val, f.err = fn()
	return f.val, f.err, false
}

// scriptStrings runs script and returns its reply, an array, as strings
// (a nil element as "").
func scriptStrings(ctx context.Context, c rueidis.Client, script *rueidis.Lua, keys, args []string) ([]string, error) {
	arr, err := script.Exec(ctx, c, keys, args).ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(arr))
	for i, m := range arr {
		out[i], _ = m.ToString()
	}
	return out, nil
}
