package httpx_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/httpx"
)

// jsonError and textError stand in for the error writers of the API and
// of the site.
func jsonError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpx.Status(err)
	httpx.WriteJSON(w, status, map[string]map[string][]string{"errors": {"body": {msg}}})
}

func textError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpx.Status(err)
	http.Error(w, msg, status)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLimiterShedsBeyondSlotsAndQueue(t *testing.T) {
	release := make(chan struct{})
	l := httpx.NewLimiter(httpx.LimitOptions{MaxInFlight: 2, MaxQueue: 1, MaxWait: time.Minute})
	held := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte("done"))
	})
	mux := http.NewServeMux()
	mux.Handle("/api/", l.Wrap(held, jsonError))
	mux.Handle("/", l.Wrap(held, textError))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	type result struct {
		status int
		err    error
	}
	results := make(chan result, 3)
	get := func(path string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			results <- result{err: err}
			return
		}
		resp.Body.Close()
		results <- result{status: resp.StatusCode}
	}
	go get("/api/a")
	go get("/api/b")
	waitFor(t, "two requests in flight", func() bool { return l.InFlight() == 2 })
	go get("/api/c")
	waitFor(t, "one request queued", func() bool { return l.Queued() == 1 })

	// Slots and queue are full: the next requests are shed at once, while
	// the others are still blocked.
	resp, err := http.Post(srv.URL+"/api/articles", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Errors map[string][]string `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("shed API response is not the JSON error shape: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || len(body.Errors["body"]) != 1 {
		t.Fatalf("API request over the limit: status %d, Retry-After %q, body %+v; want 503, 1, an errors.body message",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, err = http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(string(b), "overloaded") {
		t.Fatalf("page over the limit: status %d, type %q, body %q; want a plain-text 503", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	// Health checks are never shed.
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while full: status %d, want 200", resp.StatusCode)
	}
	if got := l.Shed(); got != 2 {
		t.Fatalf("Shed() = %d, want 2", got)
	}
	select {
	case r := <-results:
		t.Fatalf("a held request finished before release: %+v", r)
	default:
	}

	// Released, the running and the queued requests all succeed.
	close(release)
	for range 3 {
		r := <-results
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("held request: %+v, want 200", r)
		}
	}
	waitFor(t, "slots to free", func() bool { return l.InFlight() == 0 && l.Queued() == 0 })
}

func TestLimiterQueueWaitIsBounded(t *testing.T) {
	release := make(chan struct{})
	l := httpx.NewLimiter(httpx.LimitOptions{MaxInFlight: 1, MaxQueue: 4, MaxWait: 20 * time.Millisecond})
	srv := httptest.NewServer(l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}), jsonError))
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for the held request
	go func() {
		if resp, err := http.Get(srv.URL + "/hold"); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "the slot to be taken", func() bool { return l.InFlight() == 1 })
	// The slot stays taken until the test ends, so a queued request can
	// only come back by giving up after MaxWait.
	resp, err := http.Get(srv.URL + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("queued request: status %d, want 503 after the queue wait", resp.StatusCode)
	}
	if l.Queued() != 0 {
		t.Fatalf("Queued() = %d after the wait ended, want 0", l.Queued())
	}
}

func TestNilLimiterPassesEverything(t *testing.T) {
	var l *httpx.Limiter = httpx.NewLimiter(httpx.LimitOptions{MaxInFlight: 0})
	if l != nil {
		t.Fatal("NewLimiter with MaxInFlight 0 should return nil (no limit)")
	}
	rec := httptest.NewRecorder()
	l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }), jsonError).
		ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusTeapot {
		t.Fatalf("status %d, want the handler's 418", rec.Code)
	}
}

// overload drives a limited handler with twice as many concurrent clients
// as it has slots plus queue places, each sending a fixed number of
// requests, and returns what they saw.
type overloadResult struct {
	ok, shed, other, errs int
	maxActive             int64
	okLatency, shedLat    []time.Duration
	missingRetryAfter     int
}

func overload(tb testing.TB, slots, queue, clients, perClient int, work time.Duration) overloadResult {
	tb.Helper()
	l := httpx.NewLimiter(httpx.LimitOptions{MaxInFlight: slots, MaxQueue: queue, MaxWait: 5 * time.Millisecond})
	var active, maxActive atomic.Int64
	srv := httptest.NewServer(l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		for {
			m := maxActive.Load()
			if n <= m || maxActive.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(work)
		active.Add(-1)
		w.Write([]byte("ok"))
	}), jsonError))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()

	var mu sync.Mutex
	var res overloadResult
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				start := time.Now()
				resp, err := client.Get(srv.URL + "/api/articles")
				el := time.Since(start)
				mu.Lock()
				switch {
				case err != nil:
					res.errs++
				case resp.StatusCode == http.StatusOK:
					res.ok++
					res.okLatency = append(res.okLatency, el)
				case resp.StatusCode == http.StatusServiceUnavailable:
					res.shed++
					res.shedLat = append(res.shedLat, el)
					if resp.Header.Get("Retry-After") == "" {
						res.missingRetryAfter++
					}
				default:
					res.other++
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	res.maxActive = maxActive.Load()
	// The node is still fine afterwards.
	resp, err := client.Get(srv.URL + "/api/articles")
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("after the overload: %v %v, want 200", err, resp)
	}
	resp.Body.Close()
	return res
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, len(s)*p/100)]
}

// TestLimiterUnderTwiceCapacity: with twice as many clients as the node
// takes, every request is either served or refused with 503+Retry-After,
// never more than the limit run at once, and the node keeps serving.
func TestLimiterUnderTwiceCapacity(t *testing.T) {
	const slots, queue = 4, 4
	res := overload(t, slots, queue, 2*(slots+queue), 40, 2*time.Millisecond)
	t.Logf("ok=%d shed=%d ok p50=%v p99=%v, shed p50=%v p99=%v, max concurrent=%d",
		res.ok, res.shed, pct(res.okLatency, 50), pct(res.okLatency, 99), pct(res.shedLat, 50), pct(res.shedLat, 99), res.maxActive)
	if res.errs != 0 || res.other != 0 {
		t.Fatalf("%d transport errors and %d unexpected statuses; want only 200 and 503", res.errs, res.other)
	}
	if res.maxActive > slots {
		t.Fatalf("%d requests ran at once, limit is %d", res.maxActive, slots)
	}
	if res.ok == 0 || res.shed == 0 {
		t.Fatalf("ok=%d shed=%d: under twice the capacity some requests must be served and some shed", res.ok, res.shed)
	}
	if res.missingRetryAfter != 0 {
		t.Fatalf("%d shed responses without Retry-After", res.missingRetryAfter)
	}
}

// BenchmarkLimiterOverload reports latency percentiles under twice the
// capacity: shed requests should come back in well under the work time of
// the accepted ones, and accepted ones within work + queue wait + noise.
func BenchmarkLimiterOverload(b *testing.B) {
	const slots, queue = 4, 4
	for range b.N {
		res := overload(b, slots, queue, 2*(slots+queue), 50, 5*time.Millisecond)
		b.ReportMetric(float64(pct(res.okLatency, 50).Microseconds()), "ok-p50-µs")
		b.ReportMetric(float64(pct(res.okLatency, 99).Microseconds()), "ok-p99-µs")
		b.ReportMetric(float64(pct(res.shedLat, 50).Microseconds()), "shed-p50-µs")
		b.ReportMetric(float64(pct(res.shedLat, 99).Microseconds()), "shed-p99-µs")
		b.ReportMetric(float64(res.shed)/float64(res.ok+res.shed), "shed-ratio")
	}
}

// Bodies are read before the slot is taken and handed on whole; one over
// the limit reaches the handler cut, so its decoder reports it as usual.
func TestLimiterHandsBodiesOn(t *testing.T) {
	l := httpx.NewLimiter(httpx.LimitOptions{MaxInFlight: 1, MaxBody: 16})
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]string
		if err := httpx.DecodeJSON(w, r, &v); err != nil {
			jsonError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	}), jsonError)
	for _, c := range []struct{ body, want string }{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`{"a":"0123456789abcdef"}`, `{"errors":{"body":["validation failed: body is too large (maximum is 16 bytes)"]}}`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/x", strings.NewReader(c.body)))
		if got := strings.TrimSpace(rec.Body.String()); got != c.want {
			t.Errorf("%s: answered %s, want %s", c.body, got, c.want)
		}
		if rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
			t.Errorf("%s: Content-Length %q for %d bytes", c.body, rec.Header().Get("Content-Length"), rec.Body.Len())
		}
	}
}

// A handler that panics gives its slot back.
func TestLimiterFreesSlotOnPanic(t *testing.T) {
	l := httpx.NewLimiter(httpx.LimitOptions{MaxInFlight: 1})
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }), jsonError)
	func() {
		defer func() { recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	if l.InFlight() != 0 {
		t.Fatalf("InFlight() = %d after a panic, want 0", l.InFlight())
	}
}

// An upload route may read a longer body than the others (MaxBodyFor), and
// the bodies held at once stay within MaxBuffered: a request whose body
// would go past it is shed unread, and its room is given back afterwards.
func TestLimiterBodyLimitsPerRouteAndInAll(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	l := httpx.NewLimiter(httpx.LimitOptions{MaxInFlight: 4, MaxBody: 16, MaxBuffered: 48,
		MaxBodyFor: func(r *http.Request) int64 {
			if r.URL.Path == "/upload" {
				return 40
			}
			return 0
		}})
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if r.URL.Query().Has("hold") {
			inHandler <- struct{}{}
			<-release
		}
		w.Write([]byte(strconv.Itoa(len(b))))
	}), textError)
	post := func(path string, n int) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(strings.Repeat("x", n))))
		return rec
	}
	if rec := post("/upload", 40); rec.Code != http.StatusOK || rec.Body.String() != "40" {
		t.Errorf("40 bytes to the upload route = %d %q, want all of them", rec.Code, rec.Body.String())
	}
	if rec := post("/other", 40); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("40 bytes elsewhere = %d %q, want the 16-byte limit", rec.Code, rec.Body.String())
	}

	// One upload of 40 bytes is held by its handler: 40 of the 48 bytes
	// are taken, so a 16-byte body does not fit, and is shed unread.
	done := make(chan struct{})
	go func() {
		defer close(done)
		post("/upload?hold", 40)
	}()
	<-inHandler
	if got := l.Buffered(); got != 40 {
		t.Errorf("buffered while the upload is held = %d, want 40", got)
	}
	if rec := post("/other", 16); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a body past the budget = %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := post("/other", 8); rec.Code != http.StatusOK {
		t.Errorf("a body within the budget = %d, want 200", rec.Code)
	}
	close(release)
	<-done
	if got := l.Buffered(); got != 0 {
		t.Errorf("buffered after every request ended = %d, want 0", got)
	}
	if rec := post("/other", 16); rec.Code != http.StatusOK {
		t.Errorf("after the upload ended = %d, want 200", rec.Code)
	}
}
