package cache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
)

// beatBus imitates PostgreSQL NOTIFY with store.Listen's listeners: one
// total order of payloads, delivered to each node on its own goroutine
// after that node's lag, and a beat from each node every 50 ms carrying
// what its Coherent adds (if it adds anything).
type beatBus struct {
	mu     sync.Mutex
	nodes  []*beatNode
	closed bool
	wg     sync.WaitGroup
}

// beatNode is one node on a beatBus and the faults the test sets on it.
type beatNode struct {
	c       *cache.Coherent
	session string
	in      chan envelope
	stop    chan struct{}
	// lag delays what this node hears; ackDelay delays the
	// acknowledgements it sends (a busy pool); dead: it sends and hears
	// nothing at all (killed, no bye); deafTo drops the beats of the
	// node with that session before they reach it.
	lag      atomic.Int64
	ackDelay atomic.Int64
	dead     atomic.Bool
	deafTo   atomic.Value // string
}

type envelope struct {
	at time.Time
	p  string
}

// beating is what a Coherent that carries leases on beats offers.
type beating interface {
	Beat() string
	OnBeat(payload string)
}

func (b *beatBus) publish(from *beatNode, p string) error {
	if from.dead.Load() {
		return nil
	}
	if d := from.ackDelay.Load(); d > 0 && strings.HasPrefix(p, "ack ") {
		time.Sleep(time.Duration(d))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	now := time.Now()
	for _, n := range b.nodes {
		n.in <- envelope{at: now.Add(time.Duration(n.lag.Load())), p: p}
	}
	return nil
}

// node adds a node, connects it and starts its listener and beats.
func (b *beatBus) node(t *testing.T) *beatNode {
	t.Helper()
	var s [6]byte
	_, _ = rand.Read(s[:])
	n := &beatNode{session: hex.EncodeToString(s[:]), in: make(chan envelope, 100_000), stop: make(chan struct{})}
	n.deafTo.Store("")
	n.c = cache.NewCoherent(cache.NewMemory(100).WithHold(10*time.Millisecond), cache.CoherentOptions{
		Publish:    func(_ context.Context, p string) error { return b.publish(n, p) },
		MaxPayload: 7999,
		EchoWait:   100 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	b.mu.Lock()
	if len(b.nodes) == 0 {
		t.Cleanup(b.close)
	}
	b.nodes = append(b.nodes, n)
	b.mu.Unlock()
	n.c.OnConnect()
	b.wg.Add(2)
	go func() { // the listener
		defer b.wg.Done()
		for {
			select {
			case <-n.stop:
				return
			case e := <-n.in:
				time.Sleep(time.Until(e.at))
				if !n.dead.Load() {
					n.hear(e.p)
				}
			}
		}
	}()
	go func() { // its beats
		defer b.wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-tick.C:
				p := "beat " + n.session + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
				if bc, ok := any(n.c).(beating); ok {
					p += " " + bc.Beat()
				}
				_ = b.publish(n, p)
			}
		}
	}()
	return n
}

// hear passes one payload on as store.Listen does.
func (n *beatNode) hear(p string) {
	rest, ok := strings.CutPrefix(p, "beat ")
	if !ok {
		n.c.OnNotification(p)
		return
	}
	from, rest, _ := strings.Cut(rest, " ")
	sent, extra, _ := strings.Cut(rest, " ")
	switch {
	case from == n.session:
		ns, _ := strconv.ParseInt(sent, 10, 64)
		n.c.OnLive(time.Unix(0, ns))
	case from == n.deafTo.Load().(string):
	default:
		if bc, ok := any(n.c).(beating); ok {
			bc.OnBeat(extra)
		}
	}
}

func (b *beatBus) close() {
	b.mu.Lock()
	b.closed = true
	for _, n := range b.nodes {
		close(n.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// awaitCaching waits until each node's cache is used and it counts all
// the others as peers.
func awaitCaching(t *testing.T, nodes ...*beatNode) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for n.c.Peers() != len(nodes)-1 || !n.c.Sync(bg) {
			if time.Now().After(deadline) {
				t.Fatalf("node %s: %d peers, cache used %v", n.session, n.c.Peers(), n.c.Sync(bg))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// cached sets key on n and reports whether n then serves it from its
// cache.
func cached(n *beatNode, key string) bool {
	n.c.Set(bg, key, []byte("old"), time.Minute)
	_, ok := n.c.Get(bg, key)
	return ok
}

// A peer that hears invalidations late (150 ms, well within MaxSilence,
// so its cache stays on) and whose acknowledgements take longer than
// EchoWait still drops the key before the writer's Delete returns, in
// every round: the writer waits for it as long as it may hold the
// writer's lease. (Before leases the writer forgot it after EchoWait, and
// it served the old value to a read made after the write.)
func TestCoherentWaitsForASlowPeerWhileItHoldsALease(t *testing.T) {
	t.Parallel()
	var b beatBus
	a, slow := b.node(t), b.node(t)
	awaitCaching(t, a, slow)
	slow.lag.Store(int64(150 * time.Millisecond))
	slow.ackDelay.Store(int64(300 * time.Millisecond))
	for i := range 5 {
		time.Sleep(20 * time.Millisecond) // past the tombstone of the last round
		if !cached(slow, "k") {
			t.Fatalf("round %d: setup: the slow node does not use its cache", i)
		}
		a.c.Delete(bg, "k")
		if _, ok := slow.c.Get(bg, "k"); ok {
			t.Fatalf("round %d: the slow node served the old value after the writer's Delete returned", i)
		}
	}
}

// A node uses its cache only once it has heard every peer grant it a
// lease, and stops when a peer's grants stop reaching it (here: its
// listener drops that peer's beats) while its own beats still come back.
func TestCoherentCacheNeedsEveryPeersLease(t *testing.T) {
	t.Parallel()
	var b beatBus
	a := b.node(t)
	awaitCaching(t, a)
	late := b.node(t)
	if cached(late, "k") {
		t.Fatal("a node that just connected used its cache before any peer granted it a lease")
	}
	awaitCaching(t, a, late)
	late.deafTo.Store(a.session)
	// a's last grant runs out a Lease (1 s) after the beat it granted; a
	// peer silent for Forget (3 s) is forgotten, which would turn the
	// cache on again. Give up at 2.5 s.
	deadline := time.Now().Add(2500 * time.Millisecond)
	for cached(late, "k") {
		if time.Now().After(deadline) {
			t.Fatal("the cache stayed on after a peer's grants stopped reaching the node")
		}
		time.Sleep(5 * time.Millisecond)
	}
	late.deafTo.Store("")
	awaitCaching(t, a, late)
}

// A writer stops waiting for a dead peer once the lease it granted runs
// out, and writes after that do not wait for it at all. The writer's own
// cache, off while the dead peer's grant is missing, is used again once
// the peer is forgotten (Forget, 3 s, after its last beat).
func TestCoherentDeadPeerDelaysWritesOnlyWithinItsLease(t *testing.T) {
	t.Parallel()
	var b beatBus
	a, gone := b.node(t), b.node(t)
	awaitCaching(t, a, gone)
	gone.dead.Store(true)
	start := time.Now()
	a.c.Delete(bg, "k")
	// Lease (1 s) and a tenth after its last beat at most; generous.
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Delete waited %v for a dead peer", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.c.Peers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer still counts the dead peer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // past the lease and its margin
	start = time.Now()
	a.c.Delete(bg, "k")
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("a Delete after the dead peer's lease ran out waited %v", d)
	}
	awaitCaching(t, a)
}

// A node that has just connected has not heard every peer yet; its
// writes must not skip them: a peer that hears late (150 ms) and uses its
// cache has dropped the key by the time the newcomer's Delete returns.
func TestCoherentNewcomerWaitsForPeersItHasNotHeard(t *testing.T) {
	t.Parallel()
	var b beatBus
	old := b.node(t)
	awaitCaching(t, old)
	old.lag.Store(int64(150 * time.Millisecond))
	if !cached(old, "k") {
		t.Fatal("setup: the old node does not use its cache")
	}
	newcomer := b.node(t)
	newcomer.c.Delete(bg, "k")
	if _, ok := old.c.Get(bg, "k"); ok {
		t.Fatal("the old node served the old value after a newcomer's Delete returned")
	}
}
