package cache_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
)

// bus delivers every published payload to every node, in order, like
// PostgreSQL NOTIFY does.
type bus struct {
	mu       sync.Mutex
	nodes    []*cache.Coherent
	payloads []string
}

func (b *bus) publish(ctx context.Context, p string) error {
	b.mu.Lock()
	b.payloads = append(b.payloads, p)
	nodes := append([]*cache.Coherent(nil), b.nodes...)
	b.mu.Unlock()
	for _, n := range nodes {
		n.OnNotification(p)
	}
	return nil
}

func (b *bus) node(maxPayload int) *cache.Coherent {
	c := cache.NewCoherent(cache.NewMemory(100), cache.CoherentOptions{Publish: b.publish, MaxPayload: maxPayload, EchoWait: time.Second})
	b.mu.Lock()
	b.nodes = append(b.nodes, c)
	b.mu.Unlock()
	c.OnConnect()
	return c
}

var bg = context.Background()

func TestCoherentDeleteReachesOtherNodes(t *testing.T) {
	var b bus
	a, other := b.node(7999), b.node(7999)
	other.Set(bg, "article:x", []byte("old"), time.Minute)
	other.Set(bg, "tags", []byte("old"), time.Minute)
	other.Set(bg, "user:1", []byte("keep"), time.Minute)

	start := time.Now()
	a.Delete(bg, "article:x", "tags")
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("Delete waited for its echo's timeout although the echo came back at once")
	}
	for _, k := range []string{"article:x", "tags"} {
		if _, ok := other.Get(bg, k); ok {
			t.Fatalf("%s still cached on the other node after Delete", k)
		}
	}
	if v, ok := other.Get(bg, "user:1"); !ok || string(v) != "keep" {
		t.Fatal("an unrelated key was dropped")
	}
	// The delete leaves a tombstone there too: a reader that loaded the
	// old value before the write cannot put it back.
	other.Set(bg, "tags", []byte("stale"), time.Minute)
	if _, ok := other.Get(bg, "tags"); ok {
		t.Fatal("a Set right after a remote Delete was stored")
	}
}

func TestCoherentSplitsLongPayloads(t *testing.T) {
	var b bus
	a, other := b.node(64), b.node(64)
	var keys []string
	for i := range 20 {
		k := "article:" + strings.Repeat("s", 10) + string(rune('a'+i))
		keys = append(keys, k)
		other.Set(bg, k, []byte("v"), time.Minute)
	}
	a.Delete(bg, keys...)
	if len(b.payloads) < 2 {
		t.Fatalf("%d payloads, want the keys split over several", len(b.payloads))
	}
	for _, p := range b.payloads {
		if len(p) > 64 {
			t.Fatalf("payload of %d bytes exceeds the limit 64", len(p))
		}
	}
	for _, k := range keys {
		if _, ok := other.Get(bg, k); ok {
			t.Fatalf("%s survived", k)
		}
	}
}

func TestCoherentFlushesForKeysThatCannotTravel(t *testing.T) {
	var b bus
	a, other := b.node(64), b.node(64)
	other.Set(bg, "user:1", []byte("v"), time.Minute)
	a.Delete(bg, "username:"+strings.Repeat("n", 100))
	if _, ok := other.Get(bg, "user:1"); ok {
		t.Fatal("an over-long key must flush the other caches entirely")
	}
}

func TestCoherentBypassedWhileDisconnected(t *testing.T) {
	var b bus
	a := b.node(7999)
	a.Set(bg, "k", []byte("v"), time.Minute)
	a.OnDisconnect()
	if _, ok := a.Get(bg, "k"); ok {
		t.Fatal("Get served from the cache while invalidations could be missed")
	}
	a.Set(bg, "k2", []byte("v"), time.Minute)
	a.OnConnect()
	if _, ok := a.Get(bg, "k"); ok {
		t.Fatal("values from before a reconnect survived it")
	}
	if _, ok := a.Get(bg, "k2"); ok {
		t.Fatal("a Set while disconnected was stored")
	}
}
