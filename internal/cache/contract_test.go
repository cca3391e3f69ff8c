package cache_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
)

// contractCache is what the service relies on: conduit.Cache plus Watch.
type contractCache interface {
	conduit.Cache
	Watch(key string, fn func())
}

// contractHold is the tombstone time the suite configures.
const contractHold = 300 * time.Millisecond

// impl makes the caches of n nodes of one cluster (a single-node cache
// returns the same cache n times).
type impl struct {
	name  string
	nodes func(t *testing.T, n int) []contractCache
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
		{"memory", func(t *testing.T, n int) []contractCache {
			m := cache.NewMemory(1000).WithHold(contractHold)
			out := make([]contractCache, n)
			for i := range out {
				out[i] = m
			}
			return out
		}},
		{"coherent", func(t *testing.T, n int) []contractCache {
			var b bus
			out := make([]contractCache, n)
			for i := range out {
				c := cache.NewCoherent(cache.NewMemory(1000).WithHold(contractHold), cache.CoherentOptions{Publish: b.publish, MaxPayload: 7999, EchoWait: time.Second})
				b.mu.Lock()
				b.nodes = append(b.nodes, c)
				b.mu.Unlock()
				c.OnConnect()
				out[i] = c
			}
			return out
		}},
		{"redis", func(t *testing.T, n int) []contractCache {
			var out []contractCache
			// The contract is about what the calls mean, not about their
			// timeouts: a Set that times out on a starved machine is
			// dropped by design (a miss), which the overwrite case would
			// read as the old value.
			rs, _ := newRedisNodes(t, n, cache.RedisOptions{Hold: contractHold, Timeout: time.Second})
			for _, r := range rs {
				out = append(out, r)
			}
			return out
		}},
	}
}

// eachCache runs f against every implementation.
func eachCache(t *testing.T, nodes int, f func(t *testing.T, cs []contractCache)) {
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) { f(t, im.nodes(t, nodes)) })
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

// Watch callbacks run when their key is deleted on any node (not for
// other keys), before long.
func TestContractWatch(t *testing.T) {
	eachCache(t, 2, func(t *testing.T, cs []contractCache) {
		var calls [2]atomic.Int64
		for i, c := range cs {
			c.Watch("lists:changed", func() { calls[i].Add(1) })
		}
		time.Sleep(50 * time.Millisecond) // let watches be armed
		base := [2]int64{calls[0].Load(), calls[1].Load()}
		cs[0].Delete(bg, "other")
		time.Sleep(50 * time.Millisecond)
		for i := range cs {
			if calls[i].Load() != base[i] {
				t.Fatalf("node %d: a delete of another key called the watcher", i)
			}
		}
		for round := range 3 {
			before := [2]int64{calls[0].Load(), calls[1].Load()}
			cs[round%2].Delete(bg, "x", "lists:changed")
			for i := range cs {
				deadline := time.Now().Add(2 * time.Second)
				for calls[i].Load() == before[i] {
					if time.Now().After(deadline) {
						t.Fatalf("round %d: node %d's watcher was not called", round, i)
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
	})
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
