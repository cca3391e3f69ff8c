package cache

import (
	"sync"
	"time"
)

// health is what a node knows about its connection to Redis: a circuit
// breaker (after a few failed calls in a row the cache is left alone and
// only the heartbeat probes it) and a lease on the near cache.
//
// The lease: values in the near cache are only right as long as Redis can
// tell this node about changes. A round trip that succeeded proves that
// the connection worked when it was sent, so one success vouches for the
// near cache for lease after its send time, no longer. A node that hears
// nothing from Redis for that long stops serving near-cache hits, and a
// writer whose invalidation cannot reach Redis waits that long before it
// answers (see Redis.Delete): by then no node serves what the write
// changed.
//
// dirty counts reasons to distrust what Redis holds (an invalidation that
// never arrived; a lapse of the lease, during which other nodes' writes
// may have failed to invalidate). The node uses the cache again only after
// the heartbeat has started a new generation in Redis (bumped == dirty).
type health struct {
	now       func() time.Time
	lease     time.Duration
	threshold int

	mu        sync.Mutex
	lastOK    time.Time // send time of the latest successful round trip
	downSince time.Time // send time of the first failure since the last success
	failures  int       // consecutive
	open      bool
	dirty     uint64
	bumped    uint64
}

func newHealth(lease time.Duration, now func() time.Time) *health {
	// Open until the first successful probe.
	return &health{now: now, lease: lease, threshold: 3, open: true}
}

// usable reports whether the cache (near and Redis) may be used now.
func (h *health) usable() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.open && h.dirty == h.bumped && h.now().Before(h.lastOK.Add(h.lease))
}

// answeredSince reports whether a round trip sent at or after t was
// answered (see fence.go).
func (h *health) answeredSince(t time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.lastOK.Before(t)
}

// ok records a successful round trip sent at sent.
func (h *health) ok(sent time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.succeeded(sent)
}

func (h *health) succeeded(sent time.Time) {
	if sent.After(h.lastOK) {
		h.lastOK = sent
	}
	h.failures = 0
	h.downSince = time.Time{}
}

// fail records a failed call sent at sent; enough of them in a row open
// the breaker.
func (h *health) fail(sent time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures++
	if h.downSince.IsZero() || sent.Before(h.downSince) {
		h.downSince = sent
	}
	if h.failures >= h.threshold {
		h.open = true
	}
}

// giveUp records an invalidation that did not reach Redis: the node
// leaves the cache alone until a new generation has been started.
func (h *health) giveUp() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open = true
	h.dirty++
}

// waitUntil is how long a writer whose invalidation started at start and
// has not reached Redis must wait before answering: until no node can
// still be serving near-cache hits vouched for by a round trip sent
// before Redis stopped answering.
func (h *health) waitUntil(start time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	from := start
	if !h.downSince.IsZero() && h.downSince.Before(from) {
		from = h.downSince
	}
	return from.Add(h.lease)
}

// lapsed is called by the heartbeat: it reports true once when the lease
// ran out since the last success, and marks the node dirty.
func (h *health) lapsed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastOK.IsZero() || h.now().Before(h.lastOK.Add(h.lease)) || h.open && h.dirty > h.bumped {
		return false
	}
	h.open = true
	h.dirty++
	return true
}

// needBump returns the dirt a new generation must clear (0: none).
func (h *health) needBump() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dirty == h.bumped {
		return 0
	}
	return h.dirty
}

// recovered closes the breaker after a successful probe sent at sent,
// once a generation bump (if one was needed) cleared dirt up to bumped.
func (h *health) recovered(sent time.Time, bumped uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.succeeded(sent)
	if bumped > h.bumped {
		h.bumped = bumped
	}
	h.open = false
}

// isOpen reports whether the breaker is open (for the metrics).
func (h *health) isOpen() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open || h.dirty != h.bumped
}
