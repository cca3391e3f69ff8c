// Package cache implements conduit.Cache: Memory for one node, Coherent to
// keep the Memory caches of several nodes coherent, None for no cache.
package cache

import (
	"context"
	"errors"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is an in-process cache with a size bound and hit/miss counters.
//
// Delete leaves a short tombstone: a Set for that key in the next moment is
// dropped. This closes the cache-aside race in which a reader loads a value,
// a writer changes the row and deletes the key, and the reader then stores
// the value it loaded before the write. GetOrLoad needs no such pause: it
// knows when its load began, so it stores unless the key was deleted since.
type Memory struct {
	mu     sync.Mutex
	items  map[string]entry
	max    int
	hold   time.Duration
	now    func() time.Time
	hits   atomic.Uint64
	misses atomic.Uint64
	// frozenUntil blocks every Set after a Clear, like a tombstone on
	// every key.
	frozenUntil time.Time
	// watches are told of deletes under their prefix and of a Clear.
	watches []prefixWatch
	// seq numbers the changes to items; an entry keeps the number of the
	// change that wrote it, cleared and evicted that of the last Clear and
	// the last eviction. A fill that began at seq s stores its value only
	// if nothing it cannot see happened to its key after s.
	seq, cleared, evicted uint64
	flights               flightGroup
}

// prefixWatch is one WatchPrefix: fn hears of the keys under prefix.
// keys lists those the cache must track to hear of them (Redis; Memory
// hears of every delete and keeps none).
type prefixWatch struct {
	prefix string
	keys   iter.Seq[string]
	fn     func(key string)
}

// watchCall is a call of a watch's fn, made once the lock is released.
type watchCall struct {
	fn  func(key string)
	key string
}

type entry struct {
	value     []byte // nil for a tombstone
	expiresAt time.Time
	seq       uint64 // Memory.seq when written
}

// NewMemory returns a cache holding at most maxItems values.
func NewMemory(maxItems int) *Memory {
	return &Memory{items: make(map[string]entry), max: maxItems, hold: 2 * time.Second, now: time.Now}
}

// WithHold sets how long a Delete or Clear blocks re-insertion (default
// 2 s) and returns m; for tests and tuning.
func (m *Memory) WithHold(d time.Duration) *Memory {
	m.hold = d
	return m
}

// Get returns the value under key if present and fresh.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool) {
	m.mu.Lock()
	e, ok := m.items[key]
	m.mu.Unlock()
	if !ok || e.value == nil || m.now().After(e.expiresAt) {
		m.misses.Add(1)
		return nil, false
	}
	m.hits.Add(1)
	return e.value, true
}

// Set stores value under key for ttl, unless key was deleted a moment ago.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.items[key]
	if ok && e.value == nil && now.Before(e.expiresAt) {
		return
	}
	if now.Before(m.frozenUntil) {
		return
	}
	m.put(now, key, entry{value: value, expiresAt: now.Add(ttl)})
}

// Delete removes keys and blocks their re-insertion for a moment.
func (m *Memory) Delete(_ context.Context, keys ...string) {
	now := m.now()
	var notify []watchCall
	m.mu.Lock()
	for _, k := range keys {
		m.put(now, k, entry{expiresAt: now.Add(m.hold)})
		for _, w := range m.watches {
			if strings.HasPrefix(k, w.prefix) {
				notify = append(notify, watchCall{w.fn, k})
			}
		}
	}
	m.mu.Unlock()
	for _, c := range notify {
		c.fn(c.key)
	}
}

// WatchPrefix calls fn(key) whenever a key under prefix is deleted (here,
// or on another node through Coherent, before that node's write is
// acknowledged), and fn("") whenever the whole cache is cleared. It lets
// state kept outside the cache follow the same invalidations. keys is for
// caches that hear only of the keys they track (Redis): this one hears of
// every delete and never reads keys, so a watch costs the same however
// many keys it covers (the list ledger's are sixteen thousand).
func (m *Memory) WatchPrefix(prefix string, keys iter.Seq[string], fn func(key string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watches = append(m.watches, prefixWatch{prefix: prefix, fn: fn})
}

// Clear drops every value and, for a moment, refuses new ones (a reader
// that loaded a value before the Clear must not store it after).
func (m *Memory) Clear() {
	until := m.now().Add(m.hold)
	m.mu.Lock()
	m.items = make(map[string]entry)
	m.frozenUntil = until
	m.seq++
	m.cleared = m.seq
	watches := m.watches
	m.mu.Unlock()
	for _, w := range watches {
		w.fn("")
	}
}

// put stores e under key, evicting first if a new key would exceed the
// bound. Tombstones count against the bound too, so a burst of deletes
// cannot grow the map. The caller holds mu.
func (m *Memory) put(now time.Time, key string, e entry) {
	if _, ok := m.items[key]; !ok && len(m.items) >= m.max {
		m.evict(now)
	}
	m.seq++
	e.seq = m.seq
	m.items[key] = e
}

// evict drops expired entries, and if that is not enough, about a tenth of
// the rest (map order is random, so this is random eviction).
func (m *Memory) evict(now time.Time) {
	m.evicted = m.seq // tombstones may go: fills running now cannot tell
	for k, e := range m.items {
		if now.After(e.expiresAt) {
			delete(m.items, k)
		}
	}
	drop := len(m.items) - m.max*9/10
	for k := range m.items {
		if drop <= 0 {
			break
		}
		delete(m.items, k)
		drop--
	}
}

// GetOrLoad returns the value under key, or loads it once however many
// readers miss it at the same moment (single flight: a reader joins only a
// load that began after it arrived, so it never gets a value read before a
// write it saw acknowledged), and stores it for ttl unless the key was
// deleted, or the cache cleared, while the load ran. Unlike Set it stores
// right after a Delete: a load that began after the Delete read the write,
// so a hot key deleted by every write is loaded once per write, not on
// every read for the tombstone's 2 s. Errors of load are returned and not
// stored.
func (m *Memory) GetOrLoad(ctx context.Context, key string, ttl time.Duration, load func() ([]byte, error)) ([]byte, error) {
	if v, ok := m.Get(ctx, key); ok {
		return v, nil
	}
	v, err, shared := m.flights.do(key, func() ([]byte, error) { return m.fill(key, ttl, load) })
	if shared && err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// The request that led the flight went away; this one did not.
		return load()
	}
	return v, err
}

func (m *Memory) fill(key string, ttl time.Duration, load func() ([]byte, error)) ([]byte, error) {
	m.mu.Lock()
	began := m.seq
	e, ok := m.items[key]
	m.mu.Unlock()
	if ok && e.value != nil && !m.now().After(e.expiresAt) {
		return e.value, nil // stored by the load this one waited behind
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.items[key]; ok && e.seq > began || m.cleared > began || m.evicted > began {
		return v, nil // deleted (or written) meanwhile, or its tombstone may have been
	}
	m.put(now, key, entry{value: v, expiresAt: now.Add(ttl)})
	return v, nil
}

// Stats returns the hit and miss counts since start.
func (m *Memory) Stats() (hits, misses uint64) {
	return m.hits.Load(), m.misses.Load()
}

// None is a cache that holds nothing: every Get misses. --cache-items 0
// selects it.
type None struct{}

// Get always misses.
func (None) Get(context.Context, string) ([]byte, bool) { return nil, false }

// Set does nothing.
func (None) Set(context.Context, string, []byte, time.Duration) {}

// Delete does nothing.
func (None) Delete(context.Context, ...string) {}
