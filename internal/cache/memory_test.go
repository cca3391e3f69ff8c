package cache

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// clock is a manual time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestMemory(max int) (*Memory, *clock) {
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(max)
	m.now = c.now
	return m, c
}

func TestMemoryGetSetAndCounters(t *testing.T) {
	ctx := context.Background()
	m, c := newTestMemory(10)
	steps := []struct {
		name       string
		do         func()
		key        string
		want       string // "" means a miss
		hits, miss uint64
	}{
		{"empty", func() {}, "a", "", 0, 1},
		{"set", func() { m.Set(ctx, "a", []byte("1"), time.Minute) }, "a", "1", 1, 1},
		{"other key", func() {}, "b", "", 1, 2},
		{"overwrite", func() { m.Set(ctx, "a", []byte("2"), time.Minute) }, "a", "2", 2, 2},
		{"before expiry", func() { c.add(59 * time.Second) }, "a", "2", 3, 2},
		{"after expiry", func() { c.add(2 * time.Second) }, "a", "", 3, 3},
	}
	for _, s := range steps {
		s.do()
		v, ok := m.Get(ctx, s.key)
		if ok != (s.want != "") || string(v) != s.want {
			t.Errorf("%s: Get(%q) = %q, %v; want %q", s.name, s.key, v, ok, s.want)
		}
		if h, mi := m.Stats(); h != s.hits || mi != s.miss {
			t.Errorf("%s: stats = %d hits %d misses, want %d %d", s.name, h, mi, s.hits, s.miss)
		}
	}
}

// After Delete, a Set of the same key is dropped for a moment: that is the
// reader who loaded the row before the write and stores it after. Once the
// moment has passed, the key can be cached again.
func TestMemoryTombstone(t *testing.T) {
	ctx := context.Background()
	m, c := newTestMemory(10)
	m.Set(ctx, "k", []byte("old"), time.Minute)

	stale := []byte("old") // loaded by a reader before the write
	m.Delete(ctx, "k")
	if _, ok := m.Get(ctx, "k"); ok {
		t.Fatal("deleted key still present")
	}
	m.Set(ctx, "k", stale, time.Minute)
	if v, ok := m.Get(ctx, "k"); ok {
		t.Fatalf("Set right after Delete was kept: %q", v)
	}
	c.add(m.hold - time.Millisecond)
	m.Set(ctx, "k", stale, time.Minute)
	if _, ok := m.Get(ctx, "k"); ok {
		t.Fatal("Set before the hold ended was kept")
	}
	c.add(2 * time.Millisecond)
	m.Set(ctx, "k", []byte("new"), time.Minute)
	if v, ok := m.Get(ctx, "k"); !ok || string(v) != "new" {
		t.Fatalf("Set after the hold: Get = %q, %v", v, ok)
	}
	// Deleting a key that was never set also blocks a stale Set.
	m.Delete(ctx, "never")
	m.Set(ctx, "never", []byte("x"), time.Minute)
	if _, ok := m.Get(ctx, "never"); ok {
		t.Error("Set after Delete of an absent key was kept")
	}
	// Other keys are unaffected.
	m.Set(ctx, "other", []byte("y"), time.Minute)
	if _, ok := m.Get(ctx, "other"); !ok {
		t.Error("unrelated key was not cached")
	}
}

// The cache never holds more than its bound, tombstones included, and it
// keeps serving after evicting.
func TestMemoryBound(t *testing.T) {
	ctx := context.Background()
	for _, max := range []int{1, 2, 10, 100} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			m, c := newTestMemory(max)
			for i := range 20 * max {
				m.Set(ctx, fmt.Sprint("k", i), []byte("v"), time.Minute)
				if i%3 == 0 {
					m.Delete(ctx, fmt.Sprint("d", i), fmt.Sprint("k", i-1))
				}
				if i%7 == 0 {
					c.add(time.Second)
				}
				if n := len(m.items); n > max {
					t.Fatalf("after %d operations the cache holds %d items, bound %d", i+1, n, max)
				}
			}
			m.Set(ctx, "last", []byte("v"), time.Minute)
			if _, ok := m.Get(ctx, "last"); !ok {
				t.Error("the newest value was evicted at once")
			}
		})
	}
}

func TestMemoryConcurrent(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				k := fmt.Sprint(i % 80)
				switch (g + i) % 3 {
				case 0:
					m.Set(ctx, k, []byte(k), time.Minute)
				case 1:
					if v, ok := m.Get(ctx, k); ok && string(v) != k {
						t.Errorf("Get(%q) = %q", k, v)
					}
				default:
					m.Delete(ctx, k)
				}
			}
		}()
	}
	wg.Wait()
	h, mi := m.Stats()
	if h+mi == 0 {
		t.Error("no lookups counted")
	}
	if len(m.items) > 50 {
		t.Errorf("cache holds %d items, bound 50", len(m.items))
	}
}

// WatchPrefix callbacks run for deletes of keys under their prefix (not
// of other keys), with the key, and for Clear, with "".
func TestMemoryWatchPrefix(t *testing.T) {
	m := NewMemory(10)
	var calls []string
	m.WatchPrefix("lists:", nil, func(key string) { calls = append(calls, key) })
	ctx := context.Background()
	m.Delete(ctx, "other", "lists", "xlists:1")
	if len(calls) != 0 {
		t.Fatalf("a delete of other keys called the watcher: %q", calls)
	}
	m.Delete(ctx, "a", "lists:7", "lists:changed")
	if !slices.Equal(calls, []string{"lists:7", "lists:changed"}) {
		t.Fatalf("after deleting two keys under the prefix: calls %q", calls)
	}
	m.Clear()
	if !slices.Equal(calls, []string{"lists:7", "lists:changed", ""}) {
		t.Fatalf("after Clear: calls %q", calls)
	}
}
