package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Coherent keeps the in-process caches of several nodes coherent: Delete
// removes keys here and publishes them, and every node deletes the keys
// it hears from the others. The transport is pluggable (PostgreSQL
// NOTIFY/LISTEN in stage 3): Publish sends a payload to every node, and
// the transport calls OnConnect, OnDisconnect and OnNotification.
//
// Guarantees: a Delete returns after its notification has come back to
// this node's own listener (bounded by EchoWait), so PostgreSQL has
// delivered it to every listening node by then; whenever the listener is
// not connected the cache is bypassed, and on every (re)connect it is
// cleared, because notifications sent meanwhile were lost.
type Coherent struct {
	local     *Memory
	publish   func(ctx context.Context, payload string) error
	maxLen    int
	node      string
	logger    *slog.Logger
	echoWait  time.Duration
	connected atomic.Bool
	seq       atomic.Uint64
	waiters   sync.Map // message id -> chan struct{}
	connects  atomic.Uint64
}

// CoherentOptions configures NewCoherent.
type CoherentOptions struct {
	// Publish sends payload to every node (including this one).
	Publish func(ctx context.Context, payload string) error
	// MaxPayload is the longest payload Publish accepts.
	MaxPayload int
	// EchoWait bounds how long Delete waits for its own message to come
	// back (default 1 s).
	EchoWait time.Duration
	Logger   *slog.Logger
}

// NewCoherent wraps local.
func NewCoherent(local *Memory, o CoherentOptions) *Coherent {
	if o.EchoWait <= 0 {
		o.EchoWait = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Coherent{local: local, publish: o.Publish, maxLen: o.MaxPayload, node: hex.EncodeToString(b[:]),
		logger: o.Logger, echoWait: o.EchoWait}
}

// Get reads the local cache while the invalidation channel is up, and
// misses otherwise.
func (c *Coherent) Get(ctx context.Context, key string) ([]byte, bool) {
	if !c.connected.Load() {
		return nil, false
	}
	return c.local.Get(ctx, key)
}

// Set stores in the local cache while the invalidation channel is up.
func (c *Coherent) Set(ctx context.Context, key string, value []byte, ttl time.Duration) {
	if c.connected.Load() {
		c.local.Set(ctx, key, value, ttl)
	}
}

// Delete removes keys here and on every other node.
func (c *Coherent) Delete(ctx context.Context, keys ...string) {
	c.local.Delete(ctx, keys...)
	if len(keys) == 0 {
		return
	}
	msgs := c.messages(keys)
	// Wait for the last message to come back: messages arrive in order.
	last := msgs[len(msgs)-1][0]
	echoed := make(chan struct{})
	c.waiters.Store(last, echoed)
	defer c.waiters.Delete(last)
	for _, msg := range msgs {
		if err := c.publish(ctx, msg[1]); err != nil {
			// Other nodes may keep a stale value until their listener
			// reconnects (which clears them) or the value expires.
			c.logger.WarnContext(ctx, "publishing cache invalidation failed", slog.Any("error", err))
			return
		}
	}
	if !c.connected.Load() {
		return // nobody to echo it; the cache is bypassed anyway
	}
	t := time.NewTimer(c.echoWait)
	defer t.Stop()
	select {
	case <-echoed:
	case <-t.C:
	case <-ctx.Done():
	}
}

// messages splits keys into payloads of at most maxLen bytes:
// "<node> <id>\n<key>\n<key>…". A key that cannot travel (too long or
// containing a newline) turns into a flush of every cache.
func (c *Coherent) messages(keys []string) [][2]string {
	var out [][2]string
	var b strings.Builder
	start := func() string {
		id := strings.Join([]string{c.node, hex.EncodeToString(seqBytes(c.seq.Add(1)))}, " ")
		b.Reset()
		b.WriteString(id)
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

func seqBytes(n uint64) []byte {
	return []byte{byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
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
}

// OnDisconnect is called when the transport lost its connection.
func (c *Coherent) OnDisconnect() { c.connected.Store(false) }

// Connects is how many times the transport has (re)connected.
func (c *Coherent) Connects() uint64 { return c.connects.Load() }

// OnNotification applies a payload published by any node.
func (c *Coherent) OnNotification(payload string) {
	head, rest, _ := strings.Cut(payload, "\n")
	node, _, _ := strings.Cut(head, " ")
	if node == c.node {
		// Our own message: the local delete happened already; wake the
		// Delete waiting for it.
		if ch, ok := c.waiters.LoadAndDelete(head); ok {
			close(ch.(chan struct{}))
		}
		return
	}
	if rest == "*" {
		c.local.Clear()
		return
	}
	if rest != "" {
		c.local.Delete(context.Background(), strings.Split(rest, "\n")...)
	}
}
