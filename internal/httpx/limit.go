package httpx

import (
	"net/http"
	"strings"
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
	exempt  func(r *http.Request) bool
	shed    atomic.Uint64
}

// LimitOptions configures a Limiter.
type LimitOptions struct {
	MaxInFlight int           // requests served at once; 0 disables the limit
	MaxQueue    int           // requests waiting for a slot beyond MaxInFlight
	MaxWait     time.Duration // longest wait in the queue
	// Exempt requests bypass the limit (health checks and metrics, so a
	// busy node is not taken for a dead one).
	Exempt func(r *http.Request) bool
}

// NewLimiter returns a limiter, or nil when o.MaxInFlight is 0.
func NewLimiter(o LimitOptions) *Limiter {
	if o.MaxInFlight <= 0 {
		return nil
	}
	if o.Exempt == nil {
		o.Exempt = func(*http.Request) bool { return false }
	}
	return &Limiter{
		slots:   make(chan struct{}, o.MaxInFlight),
		queue:   make(chan struct{}, max(o.MaxQueue, 0)),
		maxWait: o.MaxWait,
		exempt:  o.Exempt,
	}
}

// Shed is how many requests were refused since start.
func (l *Limiter) Shed() uint64 { return l.shed.Load() }

// InFlight is how many requests hold a slot now.
func (l *Limiter) InFlight() int { return len(l.slots) }

// Queued is how many requests wait for a slot now.
func (l *Limiter) Queued() int { return len(l.queue) }

// Middleware applies the limit. A nil Limiter lets everything through.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.exempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		if !l.acquire(r) {
			l.shed.Add(1)
			writeOverloaded(w, r)
			return
		}
		defer func() { <-l.slots }()
		next.ServeHTTP(w, r)
	})
}

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

// writeOverloaded answers a shed request: the spec's JSON error shape under
// /api, plain text elsewhere. Retry-After tells clients (and people) to
// come back in a second rather than hammer the node.
func writeOverloaded(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Retry-After", "1")
	h.Set("Cache-Control", "no-store")
	// Nothing of the request body is read: close the connection rather
	// than drain a large upload of a request we refuse.
	if r.ContentLength != 0 {
		h.Set("Connection", "close")
	}
	const msg = "the server is overloaded; try again in a moment"
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api" {
		WriteJSON(w, http.StatusServiceUnavailable, map[string]map[string][]string{"errors": {"body": {msg}}})
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(msg + "\n"))
}
