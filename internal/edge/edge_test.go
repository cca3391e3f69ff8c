package edge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads one series of a metric vector.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &m)
	return 0
}

// fakeEdge records the purges it gets; fail decides, per request, whether
// to refuse it.
type fakeEdge struct {
	mu       sync.Mutex
	purges   [][]string
	fail     func(n int) bool
	requests int
	got      chan struct{}
}

func newFakeEdge(t *testing.T, fail func(n int) bool) (*fakeEdge, *httptest.Server) {
	f := &fakeEdge{fail: fail, got: make(chan struct{}, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests++
		n := f.requests
		f.mu.Unlock()
		if r.Method != "PURGE" {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		if f.fail != nil && f.fail(n) {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		f.mu.Lock()
		f.purges = append(f.purges, strings.Fields(r.Header.Get("Surrogate-Key")))
		f.mu.Unlock()
		f.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// keys returns every key purged so far, sorted, with repeats.
func (f *fakeEdge) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.purges {
		out = append(out, p...)
	}
	slices.Sort(out)
	return out
}

// waitFor waits until cond holds (deliveries are asynchronous).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func start(t *testing.T, o Options) *Publisher {
	t.Helper()
	if o.FlushKey == "" {
		o.FlushKey = "site"
	}
	if o.RepeatAfter == 0 {
		o.RepeatAfter = -1
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func TestPurgeReachesEveryEdge(t *testing.T) {
	a, srvA := newFakeEdge(t, nil)
	b, srvB := newFakeEdge(t, nil)
	p := start(t, Options{URLs: []string{srvA.URL, srvB.URL + "/"}})
	p.Purge("article-1", "user-2")
	p.Purge("list", "article-1")
	for _, f := range []*fakeEdge{a, b} {
		waitFor(t, "both purges", func() bool {
			k := slices.Compact(f.keys())
			return slices.Equal(k, []string{"article-1", "list", "user-2"})
		})
	}
}

func TestPurgeNeverBlocksAndRetriesUntilDelivered(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	f, srv := newFakeEdge(t, func(n int) bool {
		if n == 1 {
			<-release // the edge hangs on the first purge
		}
		return n <= 3 // and refuses the first three
	})
	reg := prometheus.NewRegistry()
	p := start(t, Options{URLs: []string{srv.URL}, Registerer: reg, Timeout: 5 * time.Second})
	for i := range 50 {
		p.Purge(fmt.Sprintf("article-%d", i)) // returns although the edge hangs
	}
	once.Do(func() { close(release) })
	waitFor(t, "every key after the retries", func() bool { return len(slices.Compact(f.keys())) == 50 })
	if n := value(t, p.m.requests.WithLabelValues(srv.Listener.Addr().String(), "error")); n != 3 {
		t.Errorf("%v failed requests counted, want 3", n)
	}
	if n := value(t, p.m.dropped.WithLabelValues(srv.Listener.Addr().String())); n != 0 {
		t.Errorf("%v keys dropped", n)
	}
	if n := value(t, p.m.pending.WithLabelValues(srv.Listener.Addr().String())); n != 0 {
		t.Errorf("%v keys still shown pending after every key was delivered", n)
	}
}

func TestPurgeGivesUpThenRecovers(t *testing.T) {
	var mu sync.Mutex
	down := true
	f, srv := newFakeEdge(t, func(int) bool { mu.Lock(); defer mu.Unlock(); return down })
	p := start(t, Options{URLs: []string{srv.URL}, GiveUpAfter: 300 * time.Millisecond})
	p.Purge("article-1")
	label := srv.Listener.Addr().String()
	waitFor(t, "the purge to be given up", func() bool { return value(t, p.m.dropped.WithLabelValues(label)) == 1 })
	mu.Lock()
	down = false
	mu.Unlock()
	p.Purge("article-2")
	waitFor(t, "the next purge", func() bool { return slices.Equal(f.keys(), []string{"article-2"}) })
}

func TestPurgeOverflowFlushesEverything(t *testing.T) {
	release := make(chan struct{})
	f, srv := newFakeEdge(t, func(n int) bool {
		if n == 1 {
			<-release
			return true
		}
		return false
	})
	p := start(t, Options{URLs: []string{srv.URL}, MaxPending: 10, Timeout: 5 * time.Second})
	p.Purge("first")
	waitFor(t, "the first request to hang", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.requests == 1 })
	for i := range 30 {
		p.Purge(fmt.Sprintf("article-%d", i))
	}
	close(release)
	waitFor(t, "the flush", func() bool { return len(f.keys()) > 0 })
	// What overflowed became the flush key; what came after it is kept.
	if got := f.keys(); !slices.Contains(got, "site") || len(got) > 12 {
		t.Errorf("after overflow purged %v, want the flush key and at most the keys queued after it", got)
	}
	if n := value(t, p.m.overflows.WithLabelValues(srv.Listener.Addr().String())); n < 1 {
		t.Errorf("overflows %v", n)
	}
}

func TestPurgeRepeatsOnceAndSplitsLargeBatches(t *testing.T) {
	f, srv := newFakeEdge(t, nil)
	p := start(t, Options{URLs: []string{srv.URL}, RepeatAfter: 50 * time.Millisecond})
	var keys []string
	for i := range 450 {
		keys = append(keys, fmt.Sprintf("article-%d", i))
	}
	p.Purge(keys...)
	waitFor(t, "the purge and its repeat", func() bool { return len(f.keys()) == 900 })
	time.Sleep(200 * time.Millisecond) // a second repeat would have come by now
	if n := len(f.keys()); n != 900 {
		t.Errorf("%d keys purged, want each key twice (900)", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, batch := range f.purges {
		if len(batch) > maxKeysPerRequest {
			t.Errorf("one request carried %d keys", len(batch))
		}
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "varnish:6081", "ftp://x/", "http://"} {
		if _, err := New(Options{URLs: []string{u}}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("no URLs accepted")
	}
}
