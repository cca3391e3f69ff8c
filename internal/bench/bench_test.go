package bench_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/bench"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// seededServer serves the JSON API over a small seeded SQLite database.
func seededServer(t *testing.T) *httptest.Server {
	t.Helper()
	db := storetest.OpenSQLite(t)
	hasher := auth.Bcrypt{Cost: 4}
	hash, err := hasher.Hash("password")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Seed(t, db, seed.Options{Seed: 1, Scale: 0.002, PasswordHash: hash})
	tokens, err := auth.NewTokens([]auth.Key{{ID: "k1", Secret: bytes.Repeat([]byte("s"), 32)}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svc := conduit.NewService(db, cache.NewMemory(1000), hasher)
	srv := httptest.NewServer(api.New(svc, tokens))
	t.Cleanup(srv.Close)
	return srv
}

func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the benchmark runs take seconds")
	}
	srv := seededServer(t)
	ctx := context.Background()

	t.Run("open loop", func(t *testing.T) {
		var log strings.Builder
		rep, err := bench.Run(ctx, bench.Config{
			BaseURL: srv.URL, Mix: "api", Rate: 400, Connections: 16, Duration: time.Second,
			Logins: 5, Baseline: true, Log: &log,
		})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Total.Errors != 0 {
			t.Fatalf("errors: %v", rep.Total.ErrorKind)
		}
		if rep.SignedIn != 5 {
			t.Errorf("signed in %d users, want 5 (log: %s)", rep.SignedIn, log.String())
		}
		// 400/s for 1 s is 400 due requests; all are sent and measured.
		if rep.Total.Requests < 390 || rep.Total.Requests > 401 {
			t.Errorf("requests = %d, want ~400", rep.Total.Requests)
		}
		names := map[string]bool{}
		for _, e := range rep.Endpoints {
			names[e.Name] = true
			if e.P50ms > e.P90ms || e.P90ms > e.P99ms || e.P99ms > e.MaxMs || e.MaxMs <= 0 {
				t.Errorf("%s: percentiles out of order: %+v", e.Name, e)
			}
		}
		for _, want := range []string{"api list", "api article", "api feed", "api comments"} {
			if !names[want] {
				t.Errorf("no %q requests in the mix: %v", want, names)
			}
		}
		if rep.Total.MeanBytes < 100 {
			t.Errorf("mean response %.0f bytes: responses not read?", rep.Total.MeanBytes)
		}
		b := rep.Baseline
		if b == nil || b.Total.Requests == 0 || b.Total.Errors != 0 || b.Ratio <= 0 || b.Bytes != int(rep.Total.MeanBytes+0.5) {
			t.Errorf("baseline: %+v", b)
		}
		var out bytes.Buffer
		bench.Print(&out, rep)
		if !strings.Contains(out.String(), "total") || !strings.Contains(out.String(), "ratio") {
			t.Errorf("report:\n%s", out.String())
		}
		if _, err := json.Marshal(rep); err != nil {
			t.Error(err)
		}
	})

	t.Run("warm-up sent and not measured", func(t *testing.T) {
		var served atomic.Int64
		counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			srv.Config.Handler.ServeHTTP(w, r)
		}))
		defer counting.Close()
		rep, err := bench.Run(ctx, bench.Config{
			BaseURL: counting.URL, Mix: "api", Rate: 200, Connections: 8, Duration: time.Second,
			Warmup: time.Second, Logins: 2,
		})
		if err != nil {
			t.Fatal(err)
		}
		// 200 measured; as many again in the warm-up; discovery and
		// sign-ins a dozen more.
		if rep.Total.Requests < 190 || rep.Total.Requests > 201 {
			t.Errorf("measured %d requests, want ~200 (the warm-up's not counted)", rep.Total.Requests)
		}
		if n := served.Load(); n < 2*rep.Total.Requests-20 {
			t.Errorf("the server saw %d requests for %d measured: no warm-up was sent", n, rep.Total.Requests)
		}
		var out bytes.Buffer
		bench.Print(&out, rep)
		if rep.WarmupSeconds != 1 || !strings.Contains(out.String(), "after a 1s warm-up") {
			t.Errorf("warm-up %vs; report:\n%s", rep.WarmupSeconds, out.String())
		}
	})

	t.Run("closed loop with writes", func(t *testing.T) {
		rep, err := bench.Run(ctx, bench.Config{
			BaseURL: srv.URL, Mix: "api", Connections: 4, Duration: 2 * time.Second, Logins: 3, Seed: 9,
		})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Total.Errors != 0 {
			t.Fatalf("errors: %v", rep.Total.ErrorKind)
		}
		writes := int64(0)
		for _, e := range rep.Endpoints {
			if strings.HasPrefix(e.Name, "write") {
				writes += e.Requests
			}
		}
		if writes == 0 || rep.Total.Requests < 100 {
			t.Errorf("%d requests, %d writes", rep.Total.Requests, writes)
		}
	})

	t.Run("full mix counts missing pages as errors", func(t *testing.T) {
		rep, err := bench.Run(ctx, bench.Config{BaseURL: srv.URL, Mix: "full", Rate: 50, Duration: time.Second, Logins: 1})
		if err != nil {
			t.Fatal(err)
		}
		// This server has no HTML site: the page views fail with 404.
		if rep.Total.ErrorKind["HTTP 404"] == 0 {
			t.Errorf("error kinds %v, want HTTP 404 for the pages", rep.Total.ErrorKind)
		}
	})
}

// The anonymous mix sends no credentials; sizes are counted compressed as
// they travel; X-Cache answers are counted; the servers' CPU time is read
// from their metrics.
func TestBenchAnonymousCompressedThroughAnEdge(t *testing.T) {
	apiSrv := seededServer(t)
	var mu sync.Mutex
	var withAuth, withAE, n int
	cpu := 1.0
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			mu.Lock()
			cpu += 0.5
			fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n", cpu)
			mu.Unlock()
			return
		}
		mu.Lock()
		n++
		if r.Header.Get("Authorization") != "" {
			withAuth++
		}
		gz := r.Header.Get("Accept-Encoding") == "gzip"
		if gz {
			withAE++
		}
		state := "HIT"
		if n%4 == 0 {
			state = "MISS"
		}
		mu.Unlock()
		w.Header().Set("X-Cache", state)
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			io.WriteString(w, "<html>a page</html>")
			return
		}
		res, err := http.Get(apiSrv.URL + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if !gz {
			w.Write(body)
			return
		}
		zw := gzip.NewWriter(w)
		w.Header().Set("Content-Encoding", "gzip")
		zw.Write(body)
		zw.Close()
	}))
	t.Cleanup(front.Close)
	var out strings.Builder
	rep, err := bench.Run(context.Background(), bench.Config{BaseURL: front.URL, Mix: "anonymous", Connections: 4,
		Duration: time.Second, AcceptEncoding: "gzip", ServerMetrics: []string{front.URL + "/metrics"}})
	if err != nil {
		t.Fatal(err)
	}
	bench.Print(&out, rep)
	if withAuth != 0 || int64(withAE) < rep.Total.Requests || rep.SignedIn != 0 {
		t.Errorf("%d requests with credentials, %d of %d with Accept-Encoding, %d signed in", withAuth, withAE, rep.Total.Requests, rep.SignedIn)
	}
	for _, e := range rep.Endpoints {
		if strings.HasPrefix(e.Name, "write") || e.Name == "api feed" || e.Name == "api current user" {
			t.Errorf("anonymous mix sent %s", e.Name)
		}
	}
	c := rep.Total.Cache
	if c["HIT"] == 0 || c["MISS"] == 0 || c["HIT"]+c["MISS"] != rep.Total.Requests {
		t.Errorf("cache states %v for %d requests", c, rep.Total.Requests)
	}
	if rep.ServerCPUSeconds != 0.5 || rep.ServerCPUPerRequestMs <= 0 {
		t.Errorf("server CPU %v s, %v ms per request", rep.ServerCPUSeconds, rep.ServerCPUPerRequestMs)
	}
	for _, want := range []string{"hit ratio", "reached the origin", "Accept-Encoding: gzip", "server CPU"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
