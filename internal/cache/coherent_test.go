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
	c := cache.NewCoherent(cache.NewMemory(100), cache.CoherentOptions{Publish: b.publish, MaxPayload: maxPayload, EchoWait: time.Second, NoBeats: true})
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
	b.mu.Lock()
	payloads := append([]string(nil), b.payloads...)
	b.mu.Unlock()
	invs := 0
	for _, p := range payloads {
		if strings.HasPrefix(p, "inv ") {
			invs++
		}
	}
	if invs < 2 {
		t.Fatalf("%d invalidation payloads, want the keys split over several", invs)
	}
	for _, p := range payloads {
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

// slowBus delivers to each node on its own goroutine after a delay, in
// order, like PostgreSQL delivering to listeners in other processes.
type slowBus struct {
	mu     sync.Mutex
	nodes  []*cache.Coherent
	in     []chan string
	closed bool
}

func (b *slowBus) publish(ctx context.Context, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	for _, ch := range b.in {
		ch <- p
	}
	return nil
}

func (b *slowBus) node(t *testing.T, delay time.Duration) *cache.Coherent {
	c := cache.NewCoherent(cache.NewMemory(100).WithHold(10*time.Millisecond), cache.CoherentOptions{Publish: b.publish, MaxPayload: 7999, EchoWait: 5 * time.Second, NoBeats: true})
	ch := make(chan string, 100)
	b.mu.Lock()
	b.nodes = append(b.nodes, c)
	b.in = append(b.in, ch)
	b.mu.Unlock()
	done := make(chan struct{})
	t.Cleanup(func() {
		b.mu.Lock()
		if !b.closed {
			b.closed = true
			for _, ch := range b.in {
				close(ch)
			}
		}
		b.mu.Unlock()
		<-done
	})
	go func() {
		defer close(done)
		for p := range ch {
			time.Sleep(delay)
			c.OnNotification(p)
		}
	}()
	c.OnConnect()
	return c
}

// Delete returns only after the other node applied the invalidation, even
// when that node hears of it late.
func TestCoherentDeleteWaitsForPeers(t *testing.T) {
	var b slowBus
	a := b.node(t, 0)
	slow := b.node(t, 30*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for a.Peers() != 1 || slow.Peers() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("nodes did not learn of each other: %d, %d peers", a.Peers(), slow.Peers())
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 5 {
		time.Sleep(15 * time.Millisecond) // past the tombstone of the last round
		slow.Set(bg, "k", []byte("old"), time.Minute)
		if _, ok := slow.Get(bg, "k"); !ok {
			t.Fatalf("round %d: setup: value not cached", i)
		}
		a.Delete(bg, "k")
		if _, ok := slow.Get(bg, "k"); ok {
			t.Fatalf("round %d: Delete returned before the slow node dropped the key", i)
		}
	}
}

// Broadcast delivers to the other nodes' handler and returns only once a
// slow node has handled it; handlers hear when the transport goes down and
// comes back.
func TestCoherentBroadcast(t *testing.T) {
	var b slowBus
	a := b.node(t, 0)
	slow := b.node(t, 30*time.Millisecond)
	var mu sync.Mutex
	var got []string
	var ups []bool
	slow.Handle("pos", func(msg string) {
		mu.Lock()
		got = append(got, msg)
		mu.Unlock()
	}, func(up bool) {
		mu.Lock()
		ups = append(ups, up)
		mu.Unlock()
	})
	var own []string
	a.Handle("pos", func(msg string) { own = append(own, msg) }, func(bool) {})
	deadline := time.Now().Add(5 * time.Second)
	for a.Peers() != 1 || slow.Peers() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("nodes did not learn of each other")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 3 {
		msg := "42 7 " + strings.Repeat("x", i)
		a.Broadcast(bg, "pos", msg)
		mu.Lock()
		last := ""
		if len(got) > 0 {
			last = got[len(got)-1]
		}
		mu.Unlock()
		if last != msg {
			t.Fatalf("round %d: Broadcast returned before the slow node handled it (last %q)", i, last)
		}
	}
	a.Broadcast(bg, "other topic", "x") // a topic with a space cannot travel: dropped
	a.Broadcast(bg, "nobody", "x")      // nobody handles it: acknowledged all the same
	if len(own) != 0 {
		t.Errorf("a node handled its own broadcast: %v", own)
	}
	slow.OnDisconnect()
	slow.OnConnect()
	mu.Lock()
	defer mu.Unlock()
	if len(ups) != 3 || !ups[0] || ups[1] || !ups[2] {
		t.Errorf("up reports %v, want [true false true] (registered while connected, then down, up)", ups)
	}
}

// A transport that beats proves the channel live: the cache is used only
// while the last beat heard was sent within MaxSilence; a late beat turns
// it off (Get misses, Set keeps nothing, Sync false) until a fresh one
// comes, which needs no clear (the connection never broke: the
// invalidations meanwhile arrive, in order, before the beat). A transport
// that never beats is trusted while connected, as before beats existed.
func TestCoherentBeats(t *testing.T) {
	var b bus
	c := cache.NewCoherent(cache.NewMemory(100), cache.CoherentOptions{Publish: b.publish, MaxPayload: 7999, MaxSilence: time.Second, NoBeats: true})
	c.OnConnect()
	c.Set(bg, "k", []byte("v"), time.Minute)
	if _, ok := c.Get(bg, "k"); !ok || !c.Sync(bg) {
		t.Fatal("without beats a connected cache is not used")
	}
	c.OnLive(time.Now())
	if _, ok := c.Get(bg, "k"); !ok || !c.Sync(bg) {
		t.Fatal("after a fresh beat the cache is not used")
	}

	silent := cache.NewCoherent(cache.NewMemory(100), cache.CoherentOptions{Publish: b.publish, MaxPayload: 7999, MaxSilence: time.Second, NoBeats: true})
	silent.OnConnect()
	silent.Set(bg, "k", []byte("v"), time.Minute)
	silent.OnLive(time.Now().Add(-2 * time.Second)) // the last beat heard is 2 s old
	if _, ok := silent.Get(bg, "k"); ok || silent.Sync(bg) {
		t.Fatal("a cache whose last beat is older than MaxSilence is used")
	}
	silent.Set(bg, "other", []byte("v"), time.Minute)
	n := 0
	if _, err := silent.GetOrLoad(bg, "third", time.Minute, func() ([]byte, error) { n++; return []byte("v"), nil }); err != nil {
		t.Fatal(err)
	}
	silent.OnLive(time.Now().Add(-3 * time.Second)) // an older beat changes nothing
	if silent.Sync(bg) {
		t.Fatal("an older beat made the cache live again")
	}
	silent.OnLive(time.Now())
	if _, ok := silent.Get(bg, "k"); !ok || !silent.Sync(bg) {
		t.Fatal("after a fresh beat the value kept before the silence is gone, or the cache is off")
	}
	if _, ok := silent.Get(bg, "other"); ok {
		t.Error("a Set while silent was kept")
	}
	if _, err := silent.GetOrLoad(bg, "third", time.Minute, func() ([]byte, error) { n++; return []byte("v"), nil }); err != nil || n != 2 {
		t.Errorf("a GetOrLoad while silent stored its value (loads %d, %v)", n, err)
	}
}
