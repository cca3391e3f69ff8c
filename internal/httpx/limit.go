package httpx

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Limiter bounds the requests one node works on at once. A request that
// finds every slot taken waits in a short queue for at most MaxWait; when
// the queue is full too, or the wait runs out, it is shed at once with 503
// and Retry-After. Shedding early keeps the latency of the accepted
// requests bounded under overload instead of letting every request slow
// down until all of them time out.
type Limiter struct {
	slots   chan struct{} // one token per running request
	queue   chan struct{} // one token per waiting request
	maxWait time.Duration
	shed    atomic.Uint64
}

// LimitOptions configures a Limiter.
type LimitOptions struct {
	MaxInFlight int           // requests served at once; 0 disables the limit
	MaxQueue    int           // requests waiting for a slot beyond MaxInFlight
	MaxWait     time.Duration // longest wait in the queue
}

// NewLimiter returns a limiter, or nil when o.MaxInFlight is 0.
func NewLimiter(o LimitOptions) *Limiter {
	if o.MaxInFlight <= 0 {
		return nil
	}
	return &Limiter{
		slots:   make(chan struct{}, o.MaxInFlight),
		queue:   make(chan struct{}, max(o.MaxQueue, 0)),
		maxWait: o.MaxWait,
	}
}

// Shed is how many requests were refused since start.
func (l *Limiter) Shed() uint64 { return l.shed.Load() }

// InFlight is how many requests hold a slot now.
func (l *Limiter) InFlight() int { return len(l.slots) }

// Queued is how many requests wait for a slot now.
func (l *Limiter) Queued() int { return len(l.queue) }

// Wrap applies the limit to next; a shed request is answered by
// writeErr, the error writer of the surface next belongs to. A nil
// Limiter lets everything through. What is not wrapped (health checks,
// so that a busy node is not taken for a dead one) is never limited.
func (l *Limiter) Wrap(next http.Handler, writeErr ErrorWriter) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.acquire(r) {
			l.shed.Add(1)
			// Retry-After tells clients (and people) to come back in a
			// second rather than hammer the node.
			h := w.Header()
			h.Set("Retry-After", "1")
			h.Set("Cache-Control", "no-store")
			// Nothing of the request body is read: close the connection
			// rather than drain a large upload of a request we refuse.
			if r.ContentLength != 0 {
				h.Set("Connection", "close")
			}
			writeErr(w, r, ErrOverloaded)
			return
		}
		defer func() { <-l.slots }()
		next.ServeHTTP(w, r)
	})
}

// ErrOverloaded is the error of a request shed by a Limiter.
var ErrOverloaded error = &Problem{Status: http.StatusServiceUnavailable, Msg: "the server is overloaded; try again in a moment"}

// acquire takes a slot, waiting in the queue if there is room there.
func (l *Limiter) acquire(r *http.Request) bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case l.queue <- struct{}{}:
	default:
		return false // queue full: shed without waiting
	}
	defer func() { <-l.queue }()
	t := time.NewTimer(l.maxWait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}
