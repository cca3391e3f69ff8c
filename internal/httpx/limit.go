package httpx

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Limiter bounds the requests one node works on at once. A request that
// finds every slot taken waits in a short queue for at most MaxWait; when
// the queue is full too, or the wait runs out, it is shed at once with 503
// and Retry-After. Shedding early keeps the latency of the accepted
// requests bounded under overload instead of letting every request slow
// down until all of them time out.
//
// A slot is held only while the handler works, never while the network is
// slow: the request body is read into memory before the request competes
// for a slot, and the response is kept in memory and sent after the slot
// is freed. So a client that sends its body a byte at a time, or never
// reads its answer, costs its own connection and no one else's request.
//
// The bodies held in memory at once are bounded too (MaxBuffered): a crowd
// of slow uploads is refused with 503 when it would hold more, instead of
// growing the node's memory without bound.
type Limiter struct {
	slots       chan struct{} // one token per running request
	queue       chan struct{} // one token per waiting request
	maxWait     time.Duration
	maxBody     int64
	maxBodyFor  func(*http.Request) int64
	maxBuffered int64
	buffered    atomic.Int64 // bytes reserved for bodies being read or held
	bodyTimeout time.Duration
	writeStall  time.Duration
	shed        atomic.Uint64
}

// LimitOptions configures a Limiter.
type LimitOptions struct {
	MaxInFlight int           // requests served at once; 0 disables the limit
	MaxQueue    int           // requests waiting for a slot beyond MaxInFlight
	MaxWait     time.Duration // longest wait in the queue
	// MaxBody is the most of a request body read before the request takes
	// a slot (default MaxBodyBytes). A longer body is handed on cut there
	// and ending in an *http.MaxBytesError, for the handler's decoder to
	// report as it reports any body over its limit.
	MaxBody int64
	// MaxBodyFor, if set, gives the limit of one request instead of
	// MaxBody when it returns more than 0 (an upload route).
	MaxBodyFor func(*http.Request) int64
	// MaxBuffered bounds the bytes of request bodies held in memory at
	// once (default 64 × MaxBody); a request whose body would go past it
	// is shed.
	MaxBuffered int64
	// BodyTimeout is how long a request body may take to arrive (default
	// 10 s); after it the request is answered 408 and the connection
	// closed.
	BodyTimeout time.Duration
	// WriteStall is how long sending a response may make no progress
	// (default 10 s) before the connection is given up: a client that
	// stops reading holds its connection and the response's memory that
	// long, not for the server's whole write timeout.
	WriteStall time.Duration
}

// NewLimiter returns a limiter, or nil when o.MaxInFlight is 0.
func NewLimiter(o LimitOptions) *Limiter {
	if o.MaxInFlight <= 0 {
		return nil
	}
	if o.MaxBody <= 0 {
		o.MaxBody = MaxBodyBytes
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 64 * o.MaxBody
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 10 * time.Second
	}
	if o.WriteStall <= 0 {
		o.WriteStall = 10 * time.Second
	}
	return &Limiter{
		slots:       make(chan struct{}, o.MaxInFlight),
		queue:       make(chan struct{}, max(o.MaxQueue, 0)),
		maxWait:     o.MaxWait,
		maxBody:     o.MaxBody,
		maxBodyFor:  o.MaxBodyFor,
		maxBuffered: o.MaxBuffered,
		bodyTimeout: o.BodyTimeout,
		writeStall:  o.WriteStall,
	}
}

// Shed is how many requests were refused since start.
func (l *Limiter) Shed() uint64 { return l.shed.Load() }

// InFlight is how many requests hold a slot now.
func (l *Limiter) InFlight() int { return len(l.slots) }

// Queued is how many requests wait for a slot now.
func (l *Limiter) Queued() int { return len(l.queue) }

// Wrap applies the limit to next; what the limiter refuses (a shed
// request, a body that does not arrive) is answered by writeErr, the error
// writer of the surface next belongs to. A nil Limiter lets everything
// through. What is not wrapped (health checks, so that a busy node is not
// taken for a dead one) is never limited.
func (l *Limiter) Wrap(next http.Handler, writeErr ErrorWriter) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// With every slot and queue place taken the request is shed
		// whatever its body holds: do not read it first.
		full := len(l.slots) == cap(l.slots) && len(l.queue) == cap(l.queue)
		limit := l.bodyLimit(r)
		reserved := l.reserve(r, limit)
		if reserved > 0 {
			defer l.buffered.Add(-reserved)
		}
		full = full || reserved < 0
		if !full {
			if err := l.readBody(w, r, limit); err != nil {
				w.Header().Set("Connection", "close")
				writeErr(w, r, err)
				return
			}
		}
		if full || !l.acquire(r) {
			l.shed.Add(1)
			// Retry-After tells clients (and people) to come back in a
			// second rather than hammer the node.
			h := w.Header()
			h.Set("Retry-After", "1")
			h.Set("Cache-Control", "no-store")
			// Close the connection rather than drain a large upload of
			// a request we refuse.
			if full && r.ContentLength != 0 {
				h.Set("Connection", "close")
			}
			writeErr(w, r, ErrOverloaded)
			return
		}
		rec := Buffer(w)
		func() {
			defer func() { <-l.slots }() // also when next panics
			next.ServeHTTP(rec, r)
		}()
		l.send(w, rec)
	})
}

// ErrOverloaded is the error of a request shed by a Limiter.
var ErrOverloaded error = &Problem{Status: http.StatusServiceUnavailable, Msg: "the server is overloaded; try again in a moment"}

// bodyLimit is the most of r's body that is read.
func (l *Limiter) bodyLimit(r *http.Request) int64 {
	if l.maxBodyFor != nil {
		if n := l.maxBodyFor(r); n > 0 {
			return n
		}
	}
	return l.maxBody
}

// reserve takes room for r's body in the node's budget of buffered bodies:
// its declared length, or limit+1 when it declares none. It returns what
// it took (0 for no body), or -1, taking nothing, when the budget has no
// room: the request is then shed without its body being read.
func (l *Limiter) reserve(r *http.Request, limit int64) int64 {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return 0
	}
	n := limit + 1
	if r.ContentLength > 0 && r.ContentLength < n {
		n = r.ContentLength
	}
	for {
		cur := l.buffered.Load()
		if cur+n > l.maxBuffered {
			return -1
		}
		if l.buffered.CompareAndSwap(cur, cur+n) {
			return n
		}
	}
}

// Buffered is how many bytes of request bodies are reserved now.
func (l *Limiter) Buffered() int64 { return l.buffered.Load() }

// readBody reads r's body into memory, at most limit bytes within
// l.bodyTimeout, and puts the copy in its place.
func (l *Limiter) readBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(l.bodyTimeout)) // not supported in tests with no connection
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return &Problem{Status: http.StatusRequestTimeout, Field: "body", Msg: "did not arrive in time"}
	case err != nil:
		return &Problem{Status: http.StatusBadRequest, Field: "body", Msg: "could not be read"}
	case int64(len(body)) > limit:
		// The rest stays unread, under the deadline, and the connection
		// is closed after the answer.
		w.Header().Set("Connection", "close")
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body[:limit]), tooLarge{limit}))
		return nil
	}
	// The whole body is here: the handler's time is not the body's.
	_ = rc.SetReadDeadline(time.Time{})
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// tooLarge is the end of a body cut at its limit.
type tooLarge struct{ limit int64 }

func (t tooLarge) Read([]byte) (int, error) { return 0, &http.MaxBytesError{Limit: t.limit} }

// sendChunk is how much of a response is handed to the connection at a
// time, each piece within the write stall.
const sendChunk = 32 << 10

// send writes the response kept by rec to w, with its length (so nothing
// is left to write after it), in pieces that the client must each take
// within l.writeStall.
func (l *Limiter) send(w http.ResponseWriter, rec *Recorder) {
	status, body := rec.Status(), rec.Body()
	if status == 0 {
		status = http.StatusOK
	}
	h := w.Header()
	if status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified &&
		h.Get("Content-Length") == "" && h.Get("Transfer-Encoding") == "" {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	rc := http.NewResponseController(w)
	stall := func() { _ = rc.SetWriteDeadline(time.Now().Add(l.writeStall)) }
	stall()
	w.WriteHeader(status)
	for len(body) > 0 {
		stall()
		n, err := w.Write(body[:min(len(body), sendChunk)])
		if err != nil {
			return // the client is gone or stopped reading
		}
		body = body[n:]
	}
	stall()
	if rc.Flush() == nil {
		// All of it is with the kernel: lift the deadline so that it does
		// not outlive this request on a kept-alive connection.
		_ = rc.SetWriteDeadline(time.Time{})
	}
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
