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

// GetOrLoad stores what a load read after the key's last Delete at once
// (no 2 s of loads on every read of a hot key after each write), never
// what a load read before it, and never what a load read across a Clear.
func TestMemoryGetOrLoadAfterDelete(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMemory(10)
	loads := 0
	loadAs := func(v string) func() ([]byte, error) {
		return func() ([]byte, error) { loads++; return []byte(v), nil }
	}
	get := func(name, want string) {
		t.Helper()
		if v, ok := m.Get(ctx, "k"); ok != (want != "") || string(v) != want {
			t.Errorf("%s: Get = %q, %v; want %q", name, v, ok, want)
		}
	}

	m.Set(ctx, "k", []byte("old"), time.Minute)
	m.Delete(ctx, "k")
	if v, err := m.GetOrLoad(ctx, "k", time.Minute, loadAs("new")); err != nil || string(v) != "new" {
		t.Fatalf("GetOrLoad after Delete = %q, %v", v, err)
	}
	get("loaded after the delete, within its hold", "new")
	if v, _ := m.GetOrLoad(ctx, "k", time.Minute, loadAs("other")); string(v) != "new" || loads != 1 {
		t.Errorf("second GetOrLoad = %q after %d loads, want the stored value after 1", v, loads)
	}

	// A Delete while the load runs: what it read may predate the write.
	m.Delete(ctx, "k")
	v, _ := m.GetOrLoad(ctx, "k", time.Minute, func() ([]byte, error) {
		m.Delete(ctx, "k")
		return []byte("read before the write"), nil
	})
	if string(v) != "read before the write" {
		t.Errorf("the loader gets its own value: %q", v)
	}
	get("deleted during the load", "")

	// So does a Clear, and a write by Set.
	for name, during := range map[string]func(){
		"cleared during the load": m.Clear,
		"set during the load":     func() { m.Set(ctx, "k", []byte("set"), time.Minute) },
	} {
		m.Clear()
		m.frozenUntil = time.Time{} // Set works again
		m.GetOrLoad(ctx, "k", time.Minute, func() ([]byte, error) { during(); return []byte("loaded"), nil })
		m.frozenUntil = time.Time{}
		if v, ok := m.Get(ctx, "k"); ok && string(v) == "loaded" {
			t.Errorf("%s: the load's value was stored", name)
		}
	}

	// A failed load stores nothing and the next one runs.
	m.Delete(ctx, "e")
	if _, err := m.GetOrLoad(ctx, "e", time.Minute, func() ([]byte, error) { return nil, fmt.Errorf("down") }); err == nil {
		t.Error("the load's error was not returned")
	}
	if v, err := m.GetOrLoad(ctx, "e", time.Minute, loadAs("up")); err != nil || string(v) != "up" {
		t.Errorf("after a failed load: %q, %v", v, err)
	}
}

// Readers that miss a key at the same moment share one load; a reader that
// arrives while a load runs waits for the next one (it may have seen a
// write the running load did not), and a Delete meanwhile keeps the running
// load's value out of the cache.
func TestMemoryGetOrLoadSingleFlight(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(10)
	var mu sync.Mutex
	loads := 0
	release := make(chan struct{})
	load := func() ([]byte, error) {
		mu.Lock()
		loads++
		n := loads
		mu.Unlock()
		<-release
		return []byte(fmt.Sprint("load ", n)), nil
	}
	first := make(chan []byte)
	go func() { v, _ := m.GetOrLoad(ctx, "k", time.Minute, load); first <- v }()
	for {
		mu.Lock()
		n := loads
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	m.Delete(ctx, "k") // a write acknowledged while load 1 runs
	const readers = 20
	var wg sync.WaitGroup
	got := make(chan string, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _ := m.GetOrLoad(ctx, "k", time.Minute, load)
			got <- string(v)
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them queue behind load 1
	close(release)
	if v := <-first; string(v) != "load 1" {
		t.Errorf("first reader got %q", v)
	}
	wg.Wait()
	close(got)
	for v := range got {
		if v == "load 1" {
			t.Errorf("a reader that arrived after the Delete got the load that began before it")
		}
	}
	if loads > 1+readers/2 { // normally 2: load 1, then one for all the readers
		t.Errorf("%d loads for %d readers", loads, readers+1)
	}
	if v, ok := m.Get(ctx, "k"); !ok || string(v) == "load 1" {
		t.Errorf("stored %q, %v; want a load that began after the Delete", v, ok)
	}
}
