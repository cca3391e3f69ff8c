package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"iter"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Coherent keeps the in-process caches of several nodes coherent: Delete
// removes keys here and publishes them, and every node deletes the keys
// it hears from the others. The transport is pluggable (PostgreSQL
// NOTIFY/LISTEN in stage 3): Publish sends a payload to every node
// (including this one), and the transport calls OnConnect, OnDisconnect
// and OnNotification, and, if it beats (store.Listen does), Beat, OnBeat
// and OnLive.
//
// Read-after-write across nodes: a node that applied an invalidation
// answers with an acknowledgement, and Delete returns only when every
// node that may still be using its cache has applied it. Whenever the
// listener is not connected the cache is bypassed, and on every reconnect
// it is cleared, because invalidations sent meanwhile were lost.
//
// Liveness: the transport sends a beat several times a second and calls
// OnLive with the send time of each of its own that comes back; the cache
// is used only while the last came back within MaxSilence (1 s) of its
// sending, which proves that every invalidation committed until then has
// been applied. So a listener that dies silently, or a server that stops
// delivering, turns the cache off within about a second.
//
// Leases: which nodes may still be using their cache? Each beat carries
// this node's stamp (its monotonic clock) and grants: for every peer, the
// stamp of the newest beat of that peer this node has processed. A node B
// uses its cache only while every peer it has heard beat within Forget
// granted it a stamp s_B (of B's current connection) with now_B - s_B <
// Lease, on B's own clock. A writer A waits for the acknowledgement of
// every peer P whose beat it processed within Lease (+ a tenth) before
// publishing, until P acknowledges or that lease runs out: P's beat was
// sent before A got it, so by then P's own view of A's grant has run out
// too, and P bypasses its cache until it has processed a newer grant of
// A, which comes after the invalidation. A dead node delays writes for at
// most the rest of its lease (about a second), and only writes begun
// within it. No clocks are compared across machines.
//
// A node is settled once a beat it sent Settle (2 s) after it connected
// (and with no silence longer than MaxSilence since) came back: it has
// then heard every node that beats. Until then its cache is off. Its
// writes know whom to wait for sooner, once its first own beat came back
// MaxSilence ago (knowsPeers); until then they wait until it does (then
// for the leased peers) or until MaxSilence has passed since they were
// published (every node that has not applied them by then has its cache
// off, by the liveness rule).
//
// The same channel carries small messages for other parts of a node
// (Broadcast and Handle), acknowledged the same way: the store's
// read-your-writes positions travel so.
//
// Messages, one per payload: "hello <node>", "bye <node> <stamp>",
// "ack <node> <writer node>:<id>",
// "inv <node> <id>\n<key>\n<key>…" ("*" as the only key clears all),
// "msg <node> <id> <topic>\n<payload>", and what Beat returns, "<node>
// <stamp> <peer>=<stamp> …" (stamps in base 36 nanoseconds), inside the
// transport's beat.
//
// A transport that does not beat (NoBeats, test buses) gets the rules of
// before leases: the cache is trusted while connected, and Delete waits
// for every node heard from, up to EchoWait; a node that misses that is
// forgotten until heard from again.
type Coherent struct {
	local     *Memory
	publish   func(ctx context.Context, payload string) error
	maxLen    int
	node      string
	logger    *slog.Logger
	echoWait  time.Duration
	msgWait   time.Duration
	connected atomic.Bool
	// lastLive is when the newest own beat heard was sent (UnixNano; 0:
	// none yet), maxSilence how old it may be; liveSince is when the run
	// of own beats without a gap longer than maxSilence began (sent),
	// backSince when the first of that run came back (local time), and
	// connectedAt when the listener last connected (UnixNano all).
	lastLive    atomic.Int64
	liveSince   atomic.Int64
	backSince   atomic.Int64
	connectedAt atomic.Int64
	maxSilence  time.Duration
	seq         atomic.Uint64
	connects    atomic.Uint64

	noBeats bool
	epoch   time.Time // stamps are nanoseconds since epoch (monotonic)
	lease   time.Duration
	settle  time.Duration
	forget  time.Duration
	// connectStamp is the stamp of the last connect: grants of older
	// stamps were given to the connection before and do not count.
	// leaseUntil is the stamp until which every peer that must grant has
	// granted (MaxInt64: no such peer).
	connectStamp atomic.Int64
	leaseUntil   atomic.Int64

	mu       sync.Mutex
	peers    map[string]*peer    // other nodes heard from
	waiting  map[string]*ackWait // invalidation or message id -> who must still ack
	handlers map[string]handler  // topic -> receiver of Broadcast messages
	tooMany  bool                // a beat could not carry every grant (logged once)
}

// peer is what this node knows of another.
type peer struct {
	// beat is when this node processed the peer's newest beat (zero:
	// none), stamp the peer's stamp in it, grant the stamp of this node it
	// granted there (-1: none).
	beat  time.Time
	stamp int64
	grant int64
	// lapsed: a wait for it ran out since that beat (logged once).
	lapsed bool
}

// handler receives one topic's messages (see Handle).
type handler struct {
	fn func(msg string)
	up func(bool)
}

// ackWait is one message's wait for acknowledgements.
type ackWait struct {
	acked   map[string]bool      // nodes that acknowledged
	pending map[string]time.Time // nodes waited for -> until when
	changed chan struct{}        // an acknowledgement came (buffered 1)
}

// CoherentOptions configures NewCoherent.
type CoherentOptions struct {
	// Publish sends payload to every node (including this one).
	Publish func(ctx context.Context, payload string) error
	// MaxPayload is the longest payload Publish accepts.
	MaxPayload int
	// EchoWait bounds how long Delete waits for acknowledgements on a
	// transport that does not beat (default 500 ms). With beats Delete
	// waits for a node at most until its lease runs out (Lease).
	EchoWait time.Duration
	// BroadcastWait bounds how long Broadcast waits for them (default
	// 3 s): its messages (read-your-writes positions) matter more than a
	// cache entry, so a node that is slow, not gone (its lease renewed),
	// is waited for longer.
	BroadcastWait time.Duration
	// MaxSilence is how long after the send time of the last own beat
	// heard (OnLive) the cache is still used (default 1 s).
	MaxSilence time.Duration
	// Lease is how long a grant lets a node use its cache after it sent
	// the beat granted (default 1 s).
	Lease time.Duration
	// Settle is how long after connecting a node's beats must have come
	// back before it counts as knowing every peer (default 2 s: a beat
	// every 250 ms, each committed within the transport's 1 s, heard
	// within MaxSilence).
	Settle time.Duration
	// Forget is how long a peer that stopped beating (without a bye) must
	// still grant before this node uses its cache again (default 3 s).
	Forget time.Duration
	// NoBeats: the transport sends no beats (see the type's comment).
	NoBeats bool
	Logger  *slog.Logger
}

// beatRoom is what the transport's beat header takes of MaxPayload.
const beatRoom = 64

// NewCoherent wraps local.
func NewCoherent(local *Memory, o CoherentOptions) *Coherent {
	if o.EchoWait <= 0 {
		o.EchoWait = 500 * time.Millisecond
	}
	if o.BroadcastWait <= 0 {
		o.BroadcastWait = 3 * time.Second
	}
	if o.MaxSilence <= 0 {
		o.MaxSilence = time.Second
	}
	if o.Lease <= 0 {
		o.Lease = time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 2 * o.MaxSilence
	}
	if o.Forget <= 0 {
		o.Forget = 3 * max(o.MaxSilence, o.Lease)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := &Coherent{local: local, publish: o.Publish, maxLen: o.MaxPayload, node: hex.EncodeToString(b[:]),
		logger: o.Logger, echoWait: o.EchoWait, msgWait: o.BroadcastWait, maxSilence: o.MaxSilence,
		noBeats: o.NoBeats, epoch: time.Now(), lease: o.Lease, settle: o.Settle, forget: o.Forget,
		peers: map[string]*peer{}, waiting: map[string]*ackWait{},
		handlers: map[string]handler{}}
	c.leaseUntil.Store(math.MaxInt64)
	return c
}

// WatchPrefix calls fn(key) when a key under prefix is deleted on any
// node, and fn("") when the cache is cleared: by a reconnect of the
// listener (invalidations sent meanwhile were lost) or a flush from
// another node (see Memory.WatchPrefix).
func (c *Coherent) WatchPrefix(prefix string, keys iter.Seq[string], fn func(key string)) {
	c.local.WatchPrefix(prefix, keys, fn)
}

// Sync reports whether this node hears invalidations now: state kept
// outside the cache and cleared by WatchPrefix callbacks (the list caches)
// must not be used while the listener is down (invalidations sent
// meanwhile are lost; the reconnect clears everything, callbacks included,
// before Sync is true again) or silent (see the type's comment).
func (c *Coherent) Sync(context.Context) bool { return c.live() }

// live reports whether the invalidation channel is up and, if the
// transport beats, heard a beat recently enough, and this node holds
// every lease it needs (see the type's comment).
func (c *Coherent) live() bool {
	if !c.connected.Load() {
		return false
	}
	if c.noBeats {
		last := c.lastLive.Load()
		return last == 0 || time.Since(time.Unix(0, last)) <= c.maxSilence
	}
	now := time.Now()
	return c.settledAt(now) && c.stamp(now) < c.leaseUntil.Load()
}

// settled reports whether the listener is connected, heard its own beat
// within MaxSilence, and has been doing so since Settle after it
// connected: it has heard every node that beats.
func (c *Coherent) settled() bool { return c.settledAt(time.Now()) }

func (c *Coherent) settledAt(now time.Time) bool {
	if !c.connected.Load() {
		return false
	}
	last := c.lastLive.Load()
	from := max(c.connectedAt.Load(), c.liveSince.Load())
	return last != 0 && now.Sub(time.Unix(0, last)) <= c.maxSilence && last-from >= int64(c.settle)
}

// knowsPeers reports whether this node's writes know whom to wait for:
// it is live, and the first own beat of its current run came back
// MaxSilence ago or more. Every node that beats has processed that beat,
// or one after it, by the time it uses its cache again, so it knows this
// node and needs its grant; and this node has heard each of them since
// (see the type's comment). Reading the cache takes longer (Settle):
// a node must have heard a beat of every peer, and a peer's beats may be
// up to MaxSilence apart and take the transport's second to commit.
func (c *Coherent) knowsPeers(now time.Time) bool {
	if !c.connected.Load() {
		return false
	}
	last, back := c.lastLive.Load(), c.backSince.Load()
	return last != 0 && now.Sub(time.Unix(0, last)) <= c.maxSilence && back >= c.connectedAt.Load() &&
		now.Sub(time.Unix(0, back)) >= c.maxSilence
}

// stamp is t on this node's monotonic clock, as beats carry it.
func (c *Coherent) stamp(t time.Time) int64 { return int64(t.Sub(c.epoch)) }

// OnLive is called by the transport when a beat it sent at sent came back
// (see the type's comment).
func (c *Coherent) OnLive(sent time.Time) {
	ns := sent.UnixNano()
	for {
		old := c.lastLive.Load()
		if ns <= old {
			return
		}
		if c.lastLive.CompareAndSwap(old, ns) {
			if ns-old > int64(c.maxSilence) || old < c.connectedAt.Load() {
				// The first since connecting, or after a silence:
				// settle again.
				c.liveSince.Store(ns)
				c.backSince.Store(time.Now().UnixNano())
			}
			return
		}
	}
}

// Beat returns what the transport adds to the beat it is about to send:
// this node, its stamp now, and its grants (see the type's comment). A
// peer whose newest beat is older than Lease gets none: this node no
// longer waits for it.
func (c *Coherent) Beat() string {
	now := time.Now()
	var b strings.Builder
	b.WriteString(c.node + " " + strconv.FormatInt(c.stamp(now), 36))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.relet(now) // forgets peers silent for Forget, if no beat came meanwhile
	for id, p := range c.peers {
		if p.beat.IsZero() || !c.leased(p, now) {
			continue
		}
		g := " " + id + "=" + strconv.FormatInt(p.stamp, 36)
		if b.Len()+len(g) > c.maxLen-beatRoom {
			// The peers left out bypass their caches: safe, and
			// logged, since a cluster this large needs another bus.
			if !c.tooMany {
				c.tooMany = true
				c.logger.Warn("cache beat too small for every peer's lease; some bypass their caches", slog.Int("peers", len(c.peers)))
			}
			break
		}
		b.WriteString(g)
	}
	return b.String()
}

// leased reports whether p may hold a lease this node granted: its newest
// beat was processed less than Lease (and a tenth, for clock rates) ago.
func (c *Coherent) leased(p *peer, now time.Time) bool {
	return !p.beat.IsZero() && now.Sub(p.beat) < c.lease+c.lease/10
}

// OnBeat is called by the transport with what another node's Beat
// returned, in order with the notifications.
func (c *Coherent) OnBeat(payload string) {
	f := strings.Fields(payload)
	if len(f) < 2 || f[0] == c.node {
		return
	}
	st, err := strconv.ParseInt(f[1], 36, 64)
	if err != nil {
		return
	}
	grant := int64(-1)
	for _, g := range f[2:] {
		if id, v, _ := strings.Cut(g, "="); id == c.node {
			if n, err := strconv.ParseInt(v, 36, 64); err == nil {
				grant = n
			}
		}
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peer(f[0])
	if !p.beat.IsZero() && st < p.stamp {
		return // an older beat (of a connection before)
	}
	*p = peer{beat: now, stamp: st, grant: grant}
	c.relet(now)
}

// peer returns the record of node id, creating it. c.mu is held.
func (c *Coherent) peer(id string) *peer {
	p := c.peers[id]
	if p == nil {
		p = &peer{grant: -1}
		c.peers[id] = p
	}
	return p
}

// relet recomputes leaseUntil from the grants of every peer heard beating
// within Forget, and forgets peers silent for longer. c.mu is held.
func (c *Coherent) relet(now time.Time) {
	until := int64(math.MaxInt64)
	from := c.connectStamp.Load()
	for id, p := range c.peers {
		if p.beat.IsZero() {
			continue // not beating (yet): see the type's comment
		}
		if now.Sub(p.beat) > c.forget {
			delete(c.peers, id)
			continue
		}
		if p.grant < from {
			until = math.MinInt64
			continue
		}
		until = min(until, p.grant+int64(c.lease))
	}
	c.leaseUntil.Store(until)
}

// Get reads the local cache while the invalidation channel is up and
// live, and misses otherwise.
func (c *Coherent) Get(ctx context.Context, key string) ([]byte, bool) {
	if !c.live() {
		return nil, false
	}
	return c.local.Get(ctx, key)
}

// Set stores in the local cache while the invalidation channel is up and
// live.
func (c *Coherent) Set(ctx context.Context, key string, value []byte, ttl time.Duration) {
	if c.live() {
		c.local.Set(ctx, key, value, ttl)
	}
}

// GetOrLoad loads once per key on this node and stores as Memory.GetOrLoad
// does while the invalidation channel is up; otherwise it loads and stores
// nothing. (A load that began before the channel went down is dropped by
// the Clear that brings it back up, before anything is read from the cache
// again.)
func (c *Coherent) GetOrLoad(ctx context.Context, key string, ttl time.Duration, load func() ([]byte, error)) ([]byte, error) {
	if !c.live() {
		return load()
	}
	return c.local.GetOrLoad(ctx, key, ttl, load)
}

// Delete removes keys here and on every other node, and returns once the
// other nodes have acknowledged (see the type's comment).
func (c *Coherent) Delete(ctx context.Context, keys ...string) {
	c.local.Delete(ctx, keys...)
	if len(keys) == 0 {
		return
	}
	c.deliver(ctx, c.messages(keys), c.echoWait, false)
}

// Broadcast sends msg to the handler of topic (see Handle) on every other
// node and returns once they have acknowledged it, like Delete. A message
// longer than the transport allows is dropped with a warning: receivers
// must treat what they hear as hints they can also do without.
func (c *Coherent) Broadcast(ctx context.Context, topic, msg string) {
	id := strconv.FormatUint(c.seq.Add(1), 36)
	payload := "msg " + c.node + " " + id + " " + topic + "\n" + msg
	if strings.ContainsAny(topic, " \n") || len(payload) > c.maxLen {
		c.logger.WarnContext(ctx, "cache bus message cannot travel; dropped", slog.String("topic", topic), slog.Int("bytes", len(payload)))
		return
	}
	c.deliver(ctx, [][2]string{{id, payload}}, c.msgWait, true)
}

// Handle registers fn to receive, in order and one at a time, the messages
// other nodes Broadcast on topic, and up to learn whether they are being
// received: up(true) on every (re)connect of the transport (messages sent
// while it was down are lost) and up(false) when it is lost. One handler
// per topic; a second replaces the first.
func (c *Coherent) Handle(topic string, fn func(msg string), up func(bool)) {
	c.mu.Lock()
	c.handlers[topic] = handler{fn: fn, up: up}
	c.mu.Unlock()
	if c.connected.Load() {
		up(true)
	}
}

// deliver publishes (id, payload) messages and waits until every peer
// that may still use its cache has acknowledged them (see the type's
// comment). wait bounds the wait for a peer whose lease is renewed while
// it does not acknowledge (Broadcast); renew says whether such a peer is
// waited for so (Delete waits until the lease it held at the start runs
// out, which is all its correctness needs).
func (c *Coherent) deliver(ctx context.Context, msgs [][2]string, wait time.Duration, renew bool) {
	// Every node must acknowledge every message; waiting for the last
	// one is enough because a node applies messages in order.
	last := msgs[len(msgs)-1][0]
	w := &ackWait{acked: map[string]bool{}, pending: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	start := time.Now()
	c.mu.Lock()
	if c.noBeats {
		for p := range c.peers {
			w.pending[p] = start.Add(wait)
		}
	}
	c.waiting[last] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, last)
		c.mu.Unlock()
	}()
	for _, msg := range msgs {
		if err := c.publish(ctx, msg[1]); err != nil {
			// Other nodes may keep a stale value until their listener
			// reconnects (which clears them) or the value expires.
			c.logger.WarnContext(ctx, "publishing cache invalidation failed", slog.Any("error", err))
			return
		}
	}
	if c.noBeats {
		if !c.connected.Load() {
			return
		}
		c.await(ctx, w, nil)
		return
	}
	// Until it has been live a while this node may not know every peer:
	// an invalidation waits until it does, or until every peer that has not
	// applied it by now has its cache off (MaxSilence). Broadcast messages
	// (positions) do not: their receivers cover the nodes that did not
	// wait for them (store.ReplicaOptions.Bus), and a write should not
	// wait twice.
	published := time.Now()
	flat := published.Add(c.maxSilence + c.maxSilence/10)
	for !renew && !c.knowsPeers(time.Now()) {
		left := time.Until(flat)
		if left <= 0 {
			return
		}
		t := time.NewTimer(min(left, 20*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	now := time.Now()
	c.mu.Lock()
	for id, p := range c.peers {
		if c.leased(p, now) && !w.acked[id] {
			w.pending[id] = p.beat.Add(c.lease + c.lease/10)
			if renew {
				w.pending[id] = start.Add(wait)
			}
		}
	}
	c.mu.Unlock()
	var lapse func(p *peer, now time.Time) bool
	if renew {
		// A peer whose lease lapses is gone: stop waiting for it.
		lapse = func(p *peer, now time.Time) bool { return !c.leased(p, now) }
	}
	c.await(ctx, w, lapse)
}

// await waits until w has no pending peer: each is dropped when it
// acknowledges, when its deadline passes, or when lapse says so (checked
// every 50 ms).
func (c *Coherent) await(ctx context.Context, w *ackWait, lapse func(p *peer, now time.Time) bool) {
	for {
		now := time.Now()
		next := now.Add(time.Hour)
		c.mu.Lock()
		for id, until := range w.pending {
			p := c.peers[id]
			if !now.Before(until) || p == nil || (lapse != nil && lapse(p, now)) {
				delete(w.pending, id)
				c.ranOut(id, p)
				continue
			}
			if until.Before(next) {
				next = until
			}
		}
		n := len(w.pending)
		c.mu.Unlock()
		if n == 0 {
			return
		}
		if poll := now.Add(50 * time.Millisecond); lapse != nil && poll.Before(next) {
			next = poll
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-w.changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// ranOut notes that a wait for peer id ended without its
// acknowledgement. c.mu is held.
func (c *Coherent) ranOut(id string, p *peer) {
	if c.noBeats {
		// Silent: presumably gone. It is waited for again once heard.
		delete(c.peers, id)
		c.logger.Warn("cache peer did not acknowledge an invalidation; forgetting it", slog.String("peer", id))
		return
	}
	if p != nil && !p.lapsed {
		// Its lease lapsed (or will have before it reads its cache): it
		// bypasses its cache until it hears this node again.
		p.lapsed = true
		c.logger.Warn("cache peer's lease lapsed before it acknowledged; not waiting for it", slog.String("peer", id),
			slog.Duration("since_beat", time.Since(p.beat)))
	}
}

// messages splits keys into "inv" payloads of at most maxLen bytes and
// returns (id, payload) pairs. A key that cannot travel (too long or
// containing a newline) turns into a flush of every cache.
func (c *Coherent) messages(keys []string) [][2]string {
	var out [][2]string
	var b strings.Builder
	start := func() string {
		id := strconv.FormatUint(c.seq.Add(1), 36)
		b.Reset()
		b.WriteString("inv " + c.node + " " + id)
		return id
	}
	id := start()
	head := b.Len()
	for _, k := range keys {
		if strings.ContainsAny(k, "\n") || head+1+len(k) > c.maxLen {
			id = start()
			b.WriteString("\n*")
			return [][2]string{{id, b.String()}}
		}
		if b.Len()+1+len(k) > c.maxLen {
			out = append(out, [2]string{id, b.String()})
			id = start()
		}
		b.WriteByte('\n')
		b.WriteString(k)
	}
	return append(out, [2]string{id, b.String()})
}

// OnConnect is called by the transport when it is listening: whatever
// happened while it was not, the local cache may be stale.
func (c *Coherent) OnConnect() {
	// Nothing is stored before the first connect (Set needs a
	// connection), so only a reconnect must clear.
	if c.connects.Add(1) > 1 {
		c.local.Clear()
	}
	now := time.Now()
	c.connectedAt.Store(now.UnixNano())
	c.connectStamp.Store(c.stamp(now))
	c.mu.Lock()
	c.relet(now) // grants to the connection before no longer count
	c.mu.Unlock()
	c.connected.Store(true)
	c.tellHandlers(true)
	go c.send("hello " + c.node)
}

// tellHandlers reports to every Handle receiver whether messages flow.
func (c *Coherent) tellHandlers(up bool) {
	c.mu.Lock()
	hs := make([]handler, 0, len(c.handlers))
	for _, h := range c.handlers {
		hs = append(hs, h)
	}
	c.mu.Unlock()
	for _, h := range hs {
		h.up(up)
	}
}

// OnDisconnect is called when the transport lost its connection (or is
// shutting down): the others need not wait for this node any more, since
// its cache is off from now on and, once it reconnects, needs grants newer
// than the bye's stamp.
func (c *Coherent) OnDisconnect() {
	c.connected.Store(false)
	c.tellHandlers(false)
	go c.send("bye " + c.node + " " + strconv.FormatInt(c.stamp(time.Now()), 36))
}

// Connects is how many times the transport has (re)connected.
func (c *Coherent) Connects() uint64 { return c.connects.Load() }

// Peers is how many other nodes this one waits for on a Delete. With
// beats it counts, once this node is settled, the peers it waits for
// that also granted it a lease it holds: two settled nodes that count
// each other read each other's writes.
func (c *Coherent) Peers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noBeats {
		return len(c.peers)
	}
	if !c.settled() {
		return 0
	}
	now := time.Now()
	n := 0
	for _, p := range c.peers {
		if c.leased(p, now) && p.grant >= c.connectStamp.Load() && c.stamp(now) < p.grant+int64(c.lease) {
			n++
		}
	}
	return n
}

func (c *Coherent) send(payload string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.publish(ctx, payload); err != nil {
		c.logger.Warn("publishing cache message failed", slog.Any("error", err))
	}
}

// OnNotification handles a payload published by any node. The transport
// calls it for one payload at a time, in order.
func (c *Coherent) OnNotification(payload string) {
	head, rest, _ := strings.Cut(payload, "\n")
	f := strings.Fields(head)
	if len(f) < 2 || f[1] == c.node {
		return // malformed, or our own message coming back
	}
	kind, from := f[0], f[1]
	if kind == "bye" {
		c.bye(from, f[2:])
		return
	}
	c.mu.Lock()
	_, known := c.peers[from]
	if c.noBeats {
		c.peer(from) // with beats, only a beat makes a peer (and Forget drops it)
	}
	c.mu.Unlock()
	switch kind {
	case "hello":
		if !known && c.noBeats {
			// Let the newcomer know us (with beats, our next beat does).
			go c.send("hello " + c.node)
		}
	case "inv":
		if len(f) < 3 {
			return
		}
		if rest == "*" {
			c.local.Clear()
		} else if rest != "" {
			c.local.Delete(context.Background(), strings.Split(rest, "\n")...)
		}
		// Applied: tell the writer (off the listener's goroutine).
		go c.send("ack " + c.node + " " + from + ":" + f[2])
	case "msg":
		if len(f) < 4 {
			return
		}
		c.mu.Lock()
		h, ok := c.handlers[f[3]]
		c.mu.Unlock()
		if ok {
			h.fn(rest)
		}
		go c.send("ack " + c.node + " " + from + ":" + f[2])
	case "ack":
		if len(f) < 3 {
			return
		}
		origin, id, _ := strings.Cut(f[2], ":")
		if origin != c.node {
			return // someone else's ack
		}
		c.mu.Lock()
		if w := c.waiting[id]; w != nil {
			w.acked[from] = true
			delete(w.pending, from)
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
	}
}

// bye handles node from's departure: its listener stopped. A bye older
// than the peer's newest beat (sent late, after it reconnected) is
// ignored.
func (c *Coherent) bye(from string, args []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[from]
	if p != nil && len(args) > 0 && !p.beat.IsZero() {
		if st, err := strconv.ParseInt(args[0], 36, 64); err != nil || st < p.stamp {
			return
		}
	}
	delete(c.peers, from)
	for _, w := range c.waiting {
		if _, ok := w.pending[from]; ok {
			delete(w.pending, from)
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}
	c.relet(time.Now())
}
