package cache_test

import (
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
)

// BenchmarkCacheTiers measures one read per tier: the in-process cache,
// a near-cache hit of the Redis cache, and a read that must go to Redis
// (another node's Set invalidated the near copy; the Set is measured on
// its own so it can be subtracted).
func BenchmarkCacheTiers(b *testing.B) {
	value := make([]byte, 1500) // about an article
	b.Run("memory hit", func(b *testing.B) {
		m := cache.NewMemory(100)
		m.Set(bg, "k", value, time.Hour)
		for b.Loop() {
			m.Get(bg, "k")
		}
	})
	rs := redistest.Start(b)
	node, other := rs.Cache(b, cache.RedisOptions{}), rs.Cache(b, cache.RedisOptions{})
	if _, err := rs.Do("SET", "conduit:gen", "0"); err != nil {
		b.Fatal(err)
	}
	b.Run("redis near hit", func(b *testing.B) {
		node.Set(bg, "k", value, time.Hour)
		node.Get(bg, "k")
		node.Get(bg, "k")
		before := node.NearHits()
		for b.Loop() {
			if _, ok := node.Get(bg, "k"); !ok {
				b.Fatal("miss")
			}
		}
		b.ReportMetric(float64(node.NearHits()-before)/float64(b.N), "near-hits/op")
	})
	// Many readers at once (8 goroutines on this machine's 2 CPUs): each
	// read must be fenced behind a recent round trip (fence.go), which
	// they share.
	b.Run("redis near hit parallel", func(b *testing.B) {
		node.Set(bg, "kp", value, time.Hour)
		node.Get(bg, "kp")
		node.Get(bg, "kp")
		before := node.NearHits()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := node.Get(bg, "kp"); !ok {
					b.Error("miss")
					return
				}
			}
		})
		b.ReportMetric(float64(node.NearHits()-before)/float64(b.N), "near-hits/op")
	})
	b.Run("redis set", func(b *testing.B) {
		for b.Loop() {
			other.Set(bg, "k2", value, time.Hour)
		}
	})
	b.Run("redis set then read through", func(b *testing.B) {
		for b.Loop() {
			other.Set(bg, "k3", value, time.Hour)
			if _, ok := node.Get(bg, "k3"); !ok {
				b.Fatal("miss")
			}
		}
	})
}
