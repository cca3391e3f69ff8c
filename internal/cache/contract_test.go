package cache_test

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
)

// contractCache is what the service relies on: conduit.Cache plus
// WatchPrefix.
type contractCache interface {
	conduit.Cache
	WatchPrefix(prefix string, keys iter.Seq[string], fn func(key string))
}

// contractHold is the tombstone time the suite configures.
const contractHold = 300 * time.Millisecond

// impl makes the caches of n nodes of one cluster (a single-node cache
// returns the same cache n times), and a reset that makes every node lose
// what it may have heard (a clear, a reconnect).
type impl struct {
	name  string
	nodes func(t *testing.T, n int) ([]contractCache, func(t *testing.T))
}

// newRedisNodes returns n Redis caches (n nodes) on a redis-server of
// the test's own.
func newRedisNodes(t *testing.T, n int, o cache.RedisOptions) ([]*cache.Redis, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	var out []*cache.Redis
	for range n {
		out = append(out, srv.Cache(t, o))
	}
	return out, srv
}

func impls() []impl {
	return []impl{
		{"memory", func(t *testing.T, n int) ([]contractCache, func(t *testing.T)) {
			m := cache.NewMemory(1000).WithHold(contractHold)
			out := make([]contractCache, n)
			for i := range out {
				out[i] = m
			}
			return out, func(*testing.T) { m.Clear() }
		}},
		{"coherent", func(t *testing.T, n int) ([]contractCache, func(t *testing.T)) {
			var b bus
			out := make([]*cache.Coherent, n)
			for i := range out {
				c := cache.NewCoherent(cache.NewMemory(1000).WithHold(contractHold), cache.CoherentOptions{Publish: b.publish, MaxPayload: 7999, EchoWait: time.Second, NoBeats: true})
				b.mu.Lock()
				b.nodes = append(b.nodes, c)
				b.mu.Unlock()
				c.OnConnect()
				out[i] = c
			}
			reconnect := func(*testing.T) {
				for _, c := range out {
					c.OnDisconnect()
					c.OnConnect()
				}
			}
			return asContract(out), reconnect
		}},
		{"redis", func(t *testing.T, n int) ([]contractCache, func(t *testing.T)) {
			// The contract is about what the calls mean, not about their
			// timeouts: a Set that times out on a starved machine is
			// dropped by design (a miss), which the overwrite case would
			// read as the old value.
			rs, srv := newRedisNodes(t, n, cache.RedisOptions{Hold: contractHold, Timeout: time.Second})
			// Every node's connection breaks.
			kill := func(t *testing.T) {
				if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
					t.Fatal(err)
				}
			}
			return asContract(rs), kill
		}},
	}
}

func asContract[C contractCache](cs []C) []contractCache {
	out := make([]contractCache, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

// eachCache runs f against every implementation.
func eachCache(t *testing.T, nodes int, f func(t *testing.T, cs []contractCache)) {
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			cs, _ := im.nodes(t, nodes)
			f(t, cs)
		})
	}
}

func get(c conduit.Cache, key string) string {
	v, ok := c.Get(bg, key)
	if !ok {
		return "<miss>"
	}
	return string(v)
}

func TestContractGetSetOverwrite(t *testing.T) {
	eachCache(t, 1, func(t *testing.T, cs []contractCache) {
		c := cs[0]
		if v := get(c, "a"); v != "<miss>" {
			t.Fatalf("empty cache: Get = %s", v)
		}
		c.Set(bg, "a", []byte("1"), time.Minute)
		c.Set(bg, "b", []byte(""), time.Minute)
		if v := get(c, "a"); v != "1" {
			t.Fatalf("after Set: Get = %s", v)
		}
		if v := get(c, "b"); v != "" {
			t.Fatalf("an empty value must be a hit, got %s", v)
		}
		c.Set(bg, "a", []byte("2 with: colons\x00and bytes"), time.Minute)
		if v := get(c, "a"); v != "2 with: colons\x00and bytes" {
			t.Fatalf("after overwrite: Get = %q", v)
		}
		if v := get(c, "other"); v != "<miss>" {
			t.Fatalf("other key: Get = %s", v)
		}
	})
}

func TestContractExpiry(t *testing.T) {
	eachCache(t, 1, func(t *testing.T, cs []contractCache) {
		c := cs[0]
		c.Set(bg, "short", []byte("v"), 50*time.Millisecond)
		c.Set(bg, "long", []byte("v"), time.Minute)
		deadline := time.Now().Add(5 * time.Second)
		for get(c, "short") != "<miss>" {
			if time.Now().After(deadline) {
				t.Fatal("a value outlived its ttl by seconds")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if get(c, "long") != "v" {
			t.Fatal("a value with a long ttl expired")
		}
	})
}

// Delete on one node removes the keys for every node at once, and blocks
// a Set of them for a moment (the cache-aside race: a reader that loaded
// before the write must not store what it loaded after it).
func TestContractDeleteEverywhereAndTombstone(t *testing.T) {
	eachCache(t, 2, func(t *testing.T, cs []contractCache) {
		a, b := cs[0], cs[1]
		for _, c := range cs {
			c.Set(bg, "k1", []byte("old"), time.Minute)
			c.Set(bg, "k2", []byte("old"), time.Minute)
			c.Set(bg, "keep", []byte("v"), time.Minute)
		}
		for _, c := range cs {
			if get(c, "k1") != "old" { // and into the near cache
				t.Fatal("setup: value not cached")
			}
		}
		a.Delete(bg, "k1", "k2", "never-set")
		for i, c := range cs {
			for _, k := range []string{"k1", "k2", "never-set"} {
				if v := get(c, k); v != "<miss>" {
					t.Fatalf("node %d: %s = %s right after Delete returned", i, k, v)
				}
			}
			if get(c, "keep") != "v" {
				t.Fatalf("node %d: an unrelated key was dropped", i)
			}
		}
		b.Set(bg, "k1", []byte("stale"), time.Minute)
		a.Set(bg, "never-set", []byte("stale"), time.Minute)
		if v := get(b, "k1"); v != "<miss>" {
			t.Fatalf("a Set right after Delete was stored: %s", v)
		}
		if v := get(a, "never-set"); v != "<miss>" {
			t.Fatalf("a Set right after Delete of an absent key was stored: %s", v)
		}
		time.Sleep(contractHold + 50*time.Millisecond)
		b.Set(bg, "k1", []byte("new"), time.Minute)
		if v := get(b, "k1"); v != "new" {
			t.Fatalf("a Set after the hold was dropped: %s", v)
		}
	})
}

// heard records the keys a watch was called with.
type heard struct {
	mu   sync.Mutex
	keys []string
}

func (h *heard) add(key string) {
	h.mu.Lock()
	h.keys = append(h.keys, key)
	h.mu.Unlock()
}

// since returns the keys heard after the first n, and how many there are.
func (h *heard) since(n int) ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys[n:]...), len(h.keys)
}

// WatchPrefix calls fn with the key when a key it covers is deleted on
// any node (not for other keys), before long, and with "" when the node
// may have missed deletes (a clear; a lost connection, after which the
// keys are watched again).
func TestContractWatchPrefix(t *testing.T) {
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			cs, reset := im.nodes(t, 2)
			var hs [2]heard
			watched := []string{"lists:changed", "lists:1", "lists:2"}
			for i, c := range cs {
				c.WatchPrefix("lists:", slices.Values(watched), hs[i].add)
			}
			synced := func() { t.Helper(); awaitSync(t, cs) }
			// waitFor waits until node i was called with key after its
			// first n calls.
			waitFor := func(i, n int, key string) {
				t.Helper()
				deadline := time.Now().Add(5 * time.Second)
				for {
					keys, _ := hs[i].since(n)
					if slices.Contains(keys, key) {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("node %d's watch was not called with %q (got %q)", i, key, keys)
					}
					time.Sleep(time.Millisecond)
				}
			}
			synced()
			_, n0 := hs[0].since(0)
			_, n1 := hs[1].since(0)
			cs[0].Delete(bg, "other", "lists", "listsx:1")
			time.Sleep(50 * time.Millisecond)
			for i, n := range []int{n0, n1} {
				keys, _ := hs[i].since(n)
				for _, k := range keys {
					if k != "" {
						t.Fatalf("node %d: a delete of keys not watched called the watch with %q", i, k)
					}
				}
			}
			round := func(r int) {
				t.Helper()
				key := watched[r%len(watched)]
				var before [2]int
				for i := range hs {
					_, before[i] = hs[i].since(0)
				}
				cs[r%2].Delete(bg, "x", key)
				for i := range cs {
					waitFor(i, before[i], key)
				}
			}
			for r := range 3 {
				round(r)
			}
			var before [2]int
			for i := range hs {
				_, before[i] = hs[i].since(0)
			}
			reset(t)
			for i := range cs {
				waitFor(i, before[i], "")
			}
			// The watch goes on after a reset (Redis tracks the keys on
			// the new connection).
			synced()
			for r := range 3 {
				round(r)
			}
		})
	}
}

// A delete of a watched key is heard once and then not again: the key
// holds no value, and Redis would report its tombstone's expiry, the hold
// after the write, as one more change, which made every node drop the
// list pages it had built since (once per write, two seconds late).
func TestContractWatchPrefixQuietAfterDelete(t *testing.T) {
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			cs, _ := im.nodes(t, 2)
			var hs [2]heard
			for i, c := range cs {
				c.WatchPrefix("lists:", slices.Values([]string{"lists:1", "lists:2"}), hs[i].add)
			}
			awaitSync(t, cs)
			var before [2]int
			for i := range hs {
				_, before[i] = hs[i].since(0)
			}
			cs[0].Delete(bg, "lists:1")
			time.Sleep(contractHold / 3) // the pushes of the delete itself
			var heardNow [2]int
			for i := range hs {
				keys, n := hs[i].since(before[i])
				if !slices.Contains(keys, "lists:1") {
					t.Fatalf("node %d did not hear the delete (heard %q)", i, keys)
				}
				heardNow[i] = n
			}
			time.Sleep(3 * contractHold)
			for i := range hs {
				if keys, _ := hs[i].since(heardNow[i]); len(keys) > 0 {
					t.Errorf("node %d heard %q after the delete's hold, with no write", i, keys)
				}
			}
		})
	}
}

// awaitSync waits until every node vouches for what its watches hear:
// Redis tracks the watched keys once it has read them, and until then the
// node says it cannot (Memory has no Sync: it always hears).
func awaitSync(t *testing.T, cs []contractCache) {
	t.Helper()
	for i, c := range cs {
		s, ok := c.(interface{ Sync(context.Context) bool })
		deadline := time.Now().Add(10 * time.Second)
		for ok && !s.Sync(bg) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d never synced", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestContractConcurrent(t *testing.T) {
	eachCache(t, 2, func(t *testing.T, cs []contractCache) {
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := cs[g%2]
				for i := range 300 {
					k := fmt.Sprint("k", i%20)
					switch (g + i) % 3 {
					case 0:
						c.Set(bg, k, []byte(k), time.Minute)
					case 1:
						if v, ok := c.Get(bg, k); ok && string(v) != k {
							t.Errorf("Get(%q) = %q", k, v)
						}
					default:
						c.Delete(bg, k)
					}
				}
			}()
		}
		wg.Wait()
	})
}
