// Package bench drives a running Conduit server over HTTP with simulated
// browser and mobile users and reports throughput and latency.
//
// Open loop (Rate > 0) sends on a fixed schedule and measures each latency
// from the moment the request was due, not from when it was sent, so a
// server that stalls is charged for the queue it causes (no coordinated
// omission). Closed loop (Rate == 0) keeps Connections requests in flight
// and finds the throughput the server sustains.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one benchmark run.
type Config struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	Mix     string // "full" (browser pages + API), "api", "anonymous" or "writes"
	// APIPrefix is the API's path under BaseURL for the writes mix
	// (Conduit: "/api"; an implementation serving the API at its root: "").
	APIPrefix   string
	Pages       Pages         // browser page paths
	Rate        float64       // requests per second; 0 for closed loop
	Connections int           // closed loop: requests in flight; open loop: most in flight
	Duration    time.Duration // measured time
	// Warmup is load sent before the measured time and not counted, so
	// that the server's caches hold what a server running for a while
	// holds (a fresh one misses every key at first). Its requests come
	// from another random stream than the measured ones: the measured part
	// asks for keys the warm-up did and did not, as a running site does.
	Warmup   time.Duration
	Logins   int           // seeded users to sign in at the start
	Password string        // their password
	SignedIn float64       // share of anonymous-capable API reads sent signed in
	Timeout  time.Duration // per request
	Seed     uint64
	// Baseline, if set, also measures a trivial handler serving bodies of
	// the same mean size, in this process, with the same load shape.
	Baseline bool
	// AcceptEncoding is sent with every request ("" sends none: bodies
	// come uncompressed). Sizes are counted as they travel.
	AcceptEncoding string
	// ServerMetrics are Prometheus endpoints of the servers under test
	// (their --admin-addr /metrics); their process CPU time is read before
	// and after the run, for the CPU cost per request.
	ServerMetrics []string
	// Log receives progress lines; may be nil.
	Log io.Writer
}

func (c *Config) defaults() {
	if c.Mix == "" {
		c.Mix = "full"
	}
	c.APIPrefix = strings.TrimSuffix(c.APIPrefix, "/")
	if c.Pages == (Pages{}) {
		c.Pages = DefaultPages
	}
	if c.Connections <= 0 {
		c.Connections = 64
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Logins <= 0 {
		c.Logins = 20
	}
	if c.Password == "" {
		c.Password = "password"
	}
	if c.SignedIn < 0 || c.SignedIn > 1 {
		c.SignedIn = 0.3
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Stats are one endpoint's (or the total's) results.
type Stats struct {
	Name      string         `json:"name"`
	Requests  int64          `json:"requests"`
	Errors    int64          `json:"errors"`
	RPS       float64        `json:"rps"`
	P50ms     float64        `json:"p50_ms"`
	P90ms     float64        `json:"p90_ms"`
	P99ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
	MeanBytes float64        `json:"mean_bytes"`
	ErrorKind map[string]int `json:"error_kinds,omitempty"`
	// Cache counts the answers by their X-Cache header (set by an edge
	// such as deploy/varnish/conduit.vcl: HIT, HIT-STALE, MISS, PASS).
	Cache map[string]int64 `json:"cache,omitempty"`
}

// Report is the result of a run.
type Report struct {
	Target      string  `json:"target"`
	Mode        string  `json:"mode"` // "open" or "closed"
	Mix         string  `json:"mix"`
	Rate        float64 `json:"rate,omitempty"`
	Connections int     `json:"connections"`
	Seconds     float64 `json:"seconds"`
	SignedIn    int     `json:"signed_in_users"`
	// WarmupSeconds is how long load ran, uncounted, before the measured
	// part (Config.Warmup).
	WarmupSeconds float64       `json:"warmup_seconds,omitempty"`
	Endpoints     []Stats       `json:"endpoints"`
	Total         Stats         `json:"total"`
	Late          int64         `json:"late_sends,omitempty"` // open loop: sends more than 1 ms behind schedule
	Baseline      *BaselineInfo `json:"baseline,omitempty"`
	// AcceptEncoding is what the requests accepted.
	AcceptEncoding string `json:"accept_encoding"`
	// ServerCPUSeconds is the servers' process CPU time spent during the
	// run (with ServerMetrics), and ServerCPUPerRequestMs that per request.
	ServerCPUSeconds      float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUPerRequestMs float64 `json:"server_cpu_per_request_ms,omitempty"`
}

// HitRatio is the share of all requests an edge answered from its cache
// (X-Cache HIT or HIT-STALE); 0 when no edge marked the answers.
func (r Report) HitRatio() float64 {
	c := r.Total.Cache
	if r.Total.Requests == 0 {
		return 0
	}
	return float64(c["HIT"]+c["HIT-STALE"]) / float64(r.Total.Requests)
}

// BaselineInfo is the trivial handler's result and the ratio to it.
type BaselineInfo struct {
	Bytes int     `json:"bytes"`
	Total Stats   `json:"total"`
	Ratio float64 `json:"ratio"` // benchmark req/s ÷ baseline req/s
}

// recorder collects the results of one endpoint.
type recorder struct {
	hist        histogram
	errs, bytes atomic.Int64
	mu          sync.Mutex
	kinds       map[string]int
	cache       map[string]int64
}

func (r *recorder) cached(state string) {
	if state == "" {
		return
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]int64{}
	}
	r.cache[state]++
	r.mu.Unlock()
}

func (r *recorder) fail(kind string) {
	r.errs.Add(1)
	r.mu.Lock()
	if r.kinds == nil {
		r.kinds = map[string]int{}
	}
	r.kinds[kind]++
	r.mu.Unlock()
}

// Run benchmarks the server at cfg.BaseURL.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.defaults()
	client := newClient(cfg.Connections, cfg.Timeout)
	defer client.CloseIdleConnections()
	var eps []endpoint
	var w *world
	var err error
	if cfg.Mix == "writes" {
		eps = writeEndpoints(cfg.APIPrefix)
		w, err = setupWriters(ctx, client, cfg, cfg.Connections)
	} else {
		if eps, err = endpoints(cfg.Mix); err != nil {
			return Report{}, err
		}
		w, err = discover(ctx, client, cfg)
	}
	if err != nil {
		return Report{}, err
	}
	if len(w.sessions) == 0 {
		fmt.Fprintln(cfg.Log, "no seeded user could sign in: signed-in requests are left out of the mix")
		eps = anonymousOnly(eps)
	}
	if cfg.Warmup > 0 {
		fmt.Fprintf(cfg.Log, "warming up for %s (not measured)\n", cfg.Warmup)
		warm := cfg
		warm.Duration, warm.Seed = cfg.Warmup, cfg.Seed^warmupStream
		if _, err := load(ctx, client, warm, w, eps, nil); err != nil {
			return Report{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	cpuBefore, err := serverCPU(ctx, client, cfg.ServerMetrics)
	if err != nil {
		return Report{}, err
	}
	rep, err := load(ctx, client, cfg, w, eps, nil)
	if err != nil {
		return rep, err
	}
	if len(cfg.ServerMetrics) > 0 {
		cpuAfter, err := serverCPU(ctx, client, cfg.ServerMetrics)
		if err != nil {
			return rep, err
		}
		rep.ServerCPUSeconds = cpuAfter - cpuBefore
		if rep.Total.Requests > 0 {
			rep.ServerCPUPerRequestMs = 1000 * rep.ServerCPUSeconds / float64(rep.Total.Requests)
		}
	}
	rep.SignedIn = len(w.sessions)
	rep.WarmupSeconds = cfg.Warmup.Seconds()
	rep.AcceptEncoding = cfg.AcceptEncoding
	if cfg.Baseline {
		size := int(rep.Total.MeanBytes + 0.5)
		base, err := baseline(ctx, cfg, size)
		if err != nil {
			return rep, fmt.Errorf("baseline: %w", err)
		}
		ratio := 0.0
		if base.RPS > 0 {
			ratio = rep.Total.RPS / base.RPS
		}
		rep.Baseline = &BaselineInfo{Bytes: size, Total: base, Ratio: ratio}
	}
	return rep, nil
}

// warmupStream turns the run's seed into the warm-up's: another stream of
// request choices from the same seed.
const warmupStream = 0x5741524d // "WARM"

func anonymousOnly(eps []endpoint) []endpoint {
	var out []endpoint
	for _, e := range eps {
		if !e.auth {
			out = append(out, e)
		}
	}
	return out
}

func newClient(conns int, timeout time.Duration) *http.Client {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		// Pages may redirect (a form post, a sign-in); count what came back.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends c and returns the response size (as it travelled: compressed
// when it was), its X-Cache header, or an error kind.
func do(ctx context.Context, client *http.Client, base, acceptEncoding string, c call) (int64, string, string) {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, body)
	if err != nil {
		return 0, "", "bad request"
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Token "+c.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout") {
			return 0, "", "timeout"
		}
		return 0, "", "transport"
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	state := resp.Header.Get("X-Cache")
	if err != nil {
		return n, state, "read body"
	}
	if resp.StatusCode >= 400 {
		return n, state, fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return n, state, ""
}

// load runs the measured phase with the given endpoints against cfg.BaseURL
// (or base, if set, for the baseline).
func load(ctx context.Context, client *http.Client, cfg Config, w *world, eps []endpoint, fixed *call) (Report, error) {
	var cum []float64
	var sum float64
	for _, e := range eps {
		sum += e.weight
		cum = append(cum, sum)
	}
	recs := make([]*recorder, len(eps))
	for i := range recs {
		recs[i] = &recorder{}
	}
	// one request: choose, send, record.
	send := func(k int, r *rand.Rand, due time.Time) {
		i := 0
		var c call
		if fixed != nil {
			c = *fixed
		} else {
			x := r.Float64() * sum
			i = sort.SearchFloat64s(cum, x)
			i = min(i, len(eps)-1)
			e := eps[i]
			var s *session
			switch {
			case w.owned:
				s = &w.sessions[k%len(w.sessions)]
			case len(w.sessions) > 0 && (e.auth || r.Float64() < cfg.SignedIn):
				s = &w.sessions[r.IntN(len(w.sessions))]
			}
			c = e.make(w, r, s)
			if s != nil && (e.auth || !strings.HasPrefix(e.name, "page")) {
				c.token = s.token
			}
			if c.as != "" {
				for j := range eps {
					if eps[j].name == c.as {
						i = j
					}
				}
			}
		}
		n, state, kind := do(ctx, client, cfg.BaseURL, cfg.AcceptEncoding, c)
		rec := recs[i]
		rec.hist.record(time.Since(due))
		rec.bytes.Add(n)
		rec.cached(state)
		if kind != "" {
			rec.fail(kind)
		}
	}

	mode := "closed"
	if cfg.Rate > 0 {
		mode = "open"
	}
	fmt.Fprintf(cfg.Log, "%s loop against %s for %s (%s mix)\n", mode, cfg.BaseURL, cfg.Duration, cfg.Mix)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var late atomic.Int64
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		due := make(chan time.Time, cfg.Connections)
		for k := range cfg.Connections {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(cfg.Seed, uint64(k)+1))
				for t := range due {
					send(k, r, t)
				}
			}()
		}
		interval := time.Duration(float64(time.Second) / cfg.Rate)
	schedule:
		for i := 0; ; i++ {
			t := start.Add(time.Duration(i) * interval)
			if !t.Before(end) {
				break
			}
			if d := time.Until(t); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break schedule
				}
			} else if d < -time.Millisecond {
				late.Add(1)
			}
			select {
			case due <- t:
			case <-ctx.Done():
				break schedule
			}
		}
		close(due)
	} else {
		for k := range cfg.Connections {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(cfg.Seed, uint64(k)+1))
				for time.Now().Before(end) && ctx.Err() == nil {
					send(k, r, time.Now())
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}

	rep := Report{Target: cfg.BaseURL, Mode: mode, Mix: cfg.Mix, Rate: cfg.Rate, Connections: cfg.Connections,
		Seconds: elapsed.Seconds(), Late: late.Load()}
	var all recorder
	allKinds := map[string]int{}
	for i, rec := range recs {
		if rec.hist.total.Load() == 0 {
			continue
		}
		name := "baseline"
		if fixed == nil {
			name = eps[i].name
		}
		rep.Endpoints = append(rep.Endpoints, stats(name, rec, elapsed))
		all.hist.merge(&rec.hist)
		all.errs.Add(rec.errs.Load())
		all.bytes.Add(rec.bytes.Load())
		for k, n := range rec.kinds {
			allKinds[k] += n
		}
	}
	all.kinds = allKinds
	all.cache = map[string]int64{}
	for _, rec := range recs {
		for k, n := range rec.cache {
			all.cache[k] += n
		}
	}
	rep.Total = stats("total", &all, elapsed)
	return rep, nil
}

func stats(name string, r *recorder, elapsed time.Duration) Stats {
	n := r.hist.total.Load()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	s := Stats{
		Name: name, Requests: n, Errors: r.errs.Load(), RPS: float64(n) / elapsed.Seconds(),
		P50ms: ms(r.hist.quantile(0.50)), P90ms: ms(r.hist.quantile(0.90)), P99ms: ms(r.hist.quantile(0.99)),
		MaxMs: ms(r.hist.maxValue()),
	}
	if n > 0 {
		s.MeanBytes = float64(r.bytes.Load()) / float64(n)
	}
	if len(r.kinds) > 0 {
		s.ErrorKind = r.kinds
	}
	if len(r.cache) > 0 {
		s.Cache = r.cache
	}
	return s
}

// baseline serves size bytes from a trivial handler inside this process
// and loads it the way the real run did.
func baseline(ctx context.Context, cfg Config, size int) (Stats, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Stats{}, err
	}
	body := bytes.Repeat([]byte("x"), size)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	cfg.BaseURL = "http://" + ln.Addr().String()
	client := newClient(cfg.Connections, cfg.Timeout)
	defer client.CloseIdleConnections()
	c := get("/")
	rep, err := load(ctx, client, cfg, &world{}, []endpoint{{name: "baseline", weight: 1}}, &c)
	return rep.Total, err
}

// discover learns tags, article slugs and authors from the API, and signs
// in up to cfg.Logins of those authors (seeded users: email
// <username>@example.com).
func discover(ctx context.Context, client *http.Client, cfg Config) (*world, error) {
	w := &world{pages: cfg.Pages}
	var tags struct {
		Tags []string `json:"tags"`
	}
	if err := getJSON(ctx, client, cfg.BaseURL+"/api/tags", &tags); err != nil {
		return nil, err
	}
	w.tags = tags.Tags
	type page struct {
		Articles []struct {
			Slug   string `json:"slug"`
			Author struct {
				Username string `json:"username"`
			} `json:"author"`
		} `json:"articles"`
		Count int `json:"articlesCount"`
	}
	seenUser := map[string]bool{}
	add := func(p page) {
		for _, a := range p.Articles {
			w.slugs = append(w.slugs, a.Slug)
			if !seenUser[a.Author.Username] {
				seenUser[a.Author.Username] = true
				w.usernames = append(w.usernames, a.Author.Username)
			}
		}
	}
	var first page
	if err := getJSON(ctx, client, cfg.BaseURL+"/api/articles?limit=100", &first); err != nil {
		return nil, err
	}
	add(first)
	w.count = first.Count
	// A few more pages spread over the first 10,000 articles.
	for k := 1; k <= 9 && 100*k < first.Count; k++ {
		off := k * min(first.Count, 10_000) / 10
		var p page
		if err := getJSON(ctx, client, fmt.Sprintf("%s/api/articles?limit=100&offset=%d", cfg.BaseURL, off), &p); err != nil {
			return nil, err
		}
		add(p)
	}
	if len(w.slugs) == 0 || len(w.tags) == 0 {
		return nil, errors.New("the server has no articles or tags: seed it first (conduit seed)")
	}
	// Sign in concurrently, a few at a time (password hashing is slow on
	// purpose).
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	logins := cfg.Logins
	if cfg.Mix == "anonymous" {
		logins = 0 // nobody signs in
	}
	for _, name := range w.usernames[:min(logins, len(w.usernames))] {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tok, err := login(ctx, client, cfg.BaseURL, name+"@example.com", cfg.Password)
			if err != nil {
				return
			}
			mu.Lock()
			w.sessions = append(w.sessions, session{username: name, token: tok})
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(w.sessions, func(i, j int) bool { return w.sessions[i].username < w.sessions[j].username })
	fmt.Fprintf(cfg.Log, "discovered %d articles, %d authors, %d tags; %d users signed in\n",
		len(w.slugs), len(w.usernames), len(w.tags), len(w.sessions))
	return w, nil
}

func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func login(ctx context.Context, client *http.Client, base, email, password string) (string, error) {
	body := jsonBody(map[string]any{"user": map[string]string{"email": email, "password": password}})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/users/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login %s: %s", email, resp.Status)
	}
	var out struct {
		User struct {
			Token string `json:"token"`
		} `json:"user"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	return out.User.Token, nil
}

// Print writes rep as a table.
func Print(w io.Writer, rep Report) {
	fmt.Fprintf(w, "%s loop, %s mix, %s", rep.Mode, rep.Mix, rep.Target)
	if rep.Mode == "open" {
		fmt.Fprintf(w, ", target %.0f req/s, up to %d in flight", rep.Rate, rep.Connections)
	} else {
		fmt.Fprintf(w, ", %d connections", rep.Connections)
	}
	fmt.Fprintf(w, ", %.1fs", rep.Seconds)
	if rep.WarmupSeconds > 0 {
		fmt.Fprintf(w, " after a %.0fs warm-up", rep.WarmupSeconds)
	}
	fmt.Fprintf(w, ", %d users signed in\n\n", rep.SignedIn)
	fmt.Fprintf(w, "%-20s %9s %7s %9s %8s %8s %8s %8s %8s\n", "endpoint", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "bytes")
	line := func(s Stats) {
		fmt.Fprintf(w, "%-20s %9d %7d %9.1f %8.2f %8.2f %8.2f %8.2f %8.0f\n",
			s.Name, s.Requests, s.Errors, s.RPS, s.P50ms, s.P90ms, s.P99ms, s.MaxMs, s.MeanBytes)
	}
	for _, s := range rep.Endpoints {
		line(s)
	}
	line(rep.Total)
	if len(rep.Total.ErrorKind) > 0 {
		kinds := make([]string, 0, len(rep.Total.ErrorKind))
		for k, n := range rep.Total.ErrorKind {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "\nerrors: %s\n", strings.Join(kinds, ", "))
	}
	ae := rep.AcceptEncoding
	if ae == "" {
		ae = "none (identity)"
	}
	fmt.Fprintf(w, "\nAccept-Encoding: %s; %.0f bytes per response on the wire (bodies)\n", ae, rep.Total.MeanBytes)
	if rep.ServerCPUSeconds > 0 {
		fmt.Fprintf(w, "server CPU: %.2f s in all, %.3f ms per request\n", rep.ServerCPUSeconds, rep.ServerCPUPerRequestMs)
	}
	if c := rep.Total.Cache; len(c) > 0 {
		var seen int64
		for _, n := range c {
			seen += n
		}
		fmt.Fprintf(w, "edge: %d of %d answers carried X-Cache: hit ratio %.1f%% (HIT %d, HIT-STALE %d, MISS %d, PASS %d); %.1f%% of requests reached the origin\n",
			seen, rep.Total.Requests, 100*rep.HitRatio(), c["HIT"], c["HIT-STALE"], c["MISS"], c["PASS"],
			100*float64(c["MISS"]+c["PASS"])/float64(seen))
	}
	if rep.Late > 0 {
		fmt.Fprintf(w, "\n%d sends were more than 1 ms behind schedule (the generator or its queue was saturated; latencies include the wait)\n", rep.Late)
	}
	if b := rep.Baseline; b != nil {
		fmt.Fprintf(w, "\nbaseline: trivial handler, %d-byte bodies, same load shape: %.1f req/s, p50 %.2f ms, p99 %.2f ms\n",
			b.Bytes, b.Total.RPS, b.Total.P50ms, b.Total.P99ms)
		fmt.Fprintf(w, "ratio to the HTTP ceiling of this machine: %.1f%%\n", 100*b.Ratio)
	}
}

// ParseBaseURL checks a server address and trims its trailing slash.
func ParseBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--url must be http(s)://host:port, not %q", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// serverCPU sums process_cpu_seconds_total over the servers' metrics
// endpoints (0 with none).
func serverCPU(ctx context.Context, client *http.Client, urls []string) (float64, error) {
	var sum float64
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, fmt.Errorf("server metrics: %w", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("server metrics %s: %s %v", u, resp.Status, err)
		}
		found := false
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return 0, fmt.Errorf("server metrics %s: %w", u, err)
				}
				sum += f
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("server metrics %s: no process_cpu_seconds_total", u)
		}
	}
	return sum, nil
}
