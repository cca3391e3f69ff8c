// Package ttl is a small map whose entries live for a fixed time: for
// values kept only for a moment, because many requests in a row ask for
// the same thing (the first page of a list, an anonymous page). It holds
// no shared state and imports nothing of Conduit, so the domain and the
// surfaces can both use it.
package ttl

import (
	"sync"
	"time"
)

// Map keeps at most max entries, each for ttl (or the ttl given to PutFor).
// When it is full it drops the expired entries, and if that is not enough
// a quarter of the others, chosen arbitrarily: entries kept for minutes
// must not all go at once because one more key came.
//
// Clear starts a new generation. Get returns the generation it saw, and
// Put drops a value loaded under an older one: the write that called Clear
// may have changed what the value was loaded from.
type Map[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	now     func() time.Time
	gen     uint64
	entries map[string]entry[V]
}

type entry[V any] struct {
	value   V
	expires time.Time
}

// New returns an empty map; now is the clock (time.Now outside tests).
func New[V any](ttl time.Duration, max int, now func() time.Time) *Map[V] {
	return &Map[V]{ttl: ttl, max: max, now: now, entries: make(map[string]entry[V])}
}

// Get returns the value under key if it has not expired, and the current
// generation, to pass to Put after loading a missing value.
func (m *Map[V]) Get(key string) (v V, ok bool, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok || m.now().After(e.expires) {
		return v, false, m.gen
	}
	return e.value, true, m.gen
}

// Put stores v under key for the ttl, unless the map was cleared since
// the Get that returned gen.
func (m *Map[V]) Put(key string, v V, gen uint64) { m.PutFor(key, v, gen, m.ttl) }

// PutFor is Put with the entry's own lifetime.
func (m *Map[V]) PutFor(key string, v V, gen uint64, ttl time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return
	}
	now := m.now()
	if _, ok := m.entries[key]; !ok && len(m.entries) >= m.max {
		m.evict(now)
	}
	m.entries[key] = entry[V]{value: v, expires: now.Add(ttl)}
}

// evict makes room: the expired entries go, then, if none had, a quarter
// of the others (Go's map order is arbitrary). The caller holds mu.
func (m *Map[V]) evict(now time.Time) {
	for k, e := range m.entries {
		if now.After(e.expires) {
			delete(m.entries, k)
		}
	}
	for k := range m.entries {
		if len(m.entries) < m.max-m.max/4 {
			return
		}
		delete(m.entries, k)
	}
}

// Range calls fn with the key and value of each entry that has not
// expired, in no order, until fn returns false. It holds the map's lock
// meanwhile: fn must be quick and must not use the map.
func (m *Map[V]) Range(fn func(key string, v V) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, e := range m.entries {
		if now.After(e.expires) {
			continue
		}
		if !fn(k, e.value) {
			return
		}
	}
}

// Clear drops every entry and starts a new generation.
func (m *Map[V]) Clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	clear(m.entries)
}

// Generation is the number of Clears so far.
func (m *Map[V]) Generation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// Len is the number of entries held, expired ones included.
func (m *Map[V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
