package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"iter"
	"log/slog"
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
// and OnNotification.
//
// Read-after-write across nodes: a node that applied an invalidation
// answers with an acknowledgement, and Delete returns only when every
// node it knows of has acknowledged (or EchoWait passed; a node that
// misses it is forgotten until it is heard from again, so one dead node
// delays one write, not all of them). Nodes learn of each other by a
// hello on connect, which the others answer. Whenever the listener is not
// connected the cache is bypassed, and on every reconnect it is cleared,
// because invalidations sent meanwhile were lost.
//
// Liveness: a transport that delivers its own beats (store.Listen does,
// several times a second) calls OnLive with each beat's send time; once
// one has arrived, the cache is used only while the last came back within
// MaxSilence (1 s) of its sending, which proves that every invalidation
// committed until then has been applied. A listener that dies silently,
// or a server that stops delivering, then turns the cache off within about
// a second, not at the transport's next ping; and the list caches, which
// ask Sync before each use, may keep pages for minutes instead of a
// second (conduit.WithListTTL).
//
// The same channel carries small messages for other parts of a node
// (Broadcast and Handle), acknowledged the same way: the store's
// read-your-writes positions travel so.
//
// Messages, one per payload: "hello <node>", "bye <node>",
// "ack <node> <writer node>:<id>",
// "inv <node> <id>\n<key>\n<key>…" ("*" as the only key clears all), and
// "msg <node> <id> <topic>\n<payload>".
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
	// the transport sends none), maxSilence how old it may be.
	lastLive   atomic.Int64
	maxSilence time.Duration
	seq        atomic.Uint64
	connects   atomic.Uint64

	mu       sync.Mutex
	peers    map[string]bool     // other nodes heard from
	waiting  map[string]*ackWait // invalidation or message id -> who must still ack
	handlers map[string]handler  // topic -> receiver of Broadcast messages
}

// handler receives one topic's messages (see Handle).
type handler struct {
	fn func(msg string)
	up func(bool)
}

type ackWait struct {
	pending map[string]bool
	done    chan struct{}
}

// CoherentOptions configures NewCoherent.
type CoherentOptions struct {
	// Publish sends payload to every node (including this one).
	Publish func(ctx context.Context, payload string) error
	// MaxPayload is the longest payload Publish accepts.
	MaxPayload int
	// EchoWait bounds how long Delete waits for acknowledgements
	// (default 500 ms).
	EchoWait time.Duration
	// BroadcastWait bounds how long Broadcast waits for them (default
	// 3 s): its messages (read-your-writes positions) matter more than a
	// cache entry, so a node that is slow, not gone, is waited for longer.
	BroadcastWait time.Duration
	// MaxSilence is how long after the send time of the last beat heard
	// (OnLive) the cache is still used (default 1 s).
	MaxSilence time.Duration
	Logger     *slog.Logger
}

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
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := &Coherent{local: local, publish: o.Publish, maxLen: o.MaxPayload, node: hex.EncodeToString(b[:]),
		logger: o.Logger, echoWait: o.EchoWait, msgWait: o.BroadcastWait, maxSilence: o.MaxSilence,
		peers: map[string]bool{}, waiting: map[string]*ackWait{},
		handlers: map[string]handler{}}
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
// transport beats, heard a beat recently enough.
func (c *Coherent) live() bool {
	if !c.connected.Load() {
		return false
	}
	last := c.lastLive.Load()
	return last == 0 || time.Since(time.Unix(0, last)) <= c.maxSilence
}

// OnLive is called by the transport when a beat it sent at sent came back
// (see the type's comment).
func (c *Coherent) OnLive(sent time.Time) {
	ns := sent.UnixNano()
	for {
		old := c.lastLive.Load()
		if ns <= old || c.lastLive.CompareAndSwap(old, ns) {
			return
		}
	}
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
	c.deliver(ctx, c.messages(keys), c.echoWait)
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
	c.deliver(ctx, [][2]string{{id, payload}}, c.msgWait)
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

// deliver publishes (id, payload) messages and waits until every known
// peer has acknowledged them, or wait passed (see the type's comment).
func (c *Coherent) deliver(ctx context.Context, msgs [][2]string, wait time.Duration) {
	// Every node must acknowledge every message; waiting for the last
	// one is enough because a node applies messages in order.
	last := msgs[len(msgs)-1][0]
	w := &ackWait{pending: map[string]bool{}, done: make(chan struct{})}
	c.mu.Lock()
	for p := range c.peers {
		w.pending[p] = true
	}
	expectAcks := len(w.pending) > 0
	if expectAcks {
		c.waiting[last] = w
	}
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
	if !expectAcks || !c.connected.Load() {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		c.mu.Lock()
		for p := range w.pending {
			// Silent: presumably gone. It is waited for again once heard.
			delete(c.peers, p)
			c.logger.Warn("cache peer did not acknowledge an invalidation; forgetting it", slog.String("peer", p))
		}
		c.mu.Unlock()
	case <-ctx.Done():
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
// shutting down): the others need not wait for this node any more.
func (c *Coherent) OnDisconnect() {
	c.connected.Store(false)
	c.tellHandlers(false)
	go c.send("bye " + c.node)
}

// Connects is how many times the transport has (re)connected.
func (c *Coherent) Connects() uint64 { return c.connects.Load() }

// Peers is how many other nodes this one waits for on a Delete.
func (c *Coherent) Peers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.peers)
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
		c.mu.Lock()
		delete(c.peers, from)
		for _, w := range c.waiting {
			if w.pending[from] {
				delete(w.pending, from)
				if len(w.pending) == 0 {
					close(w.done)
				}
			}
		}
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	known := c.peers[from]
	c.peers[from] = true
	c.mu.Unlock()
	switch kind {
	case "hello":
		if !known {
			go c.send("hello " + c.node) // let the newcomer know us
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
		if w := c.waiting[id]; w != nil && w.pending[from] {
			delete(w.pending, from)
			if len(w.pending) == 0 {
				close(w.done)
			}
		}
		c.mu.Unlock()
	}
}
