package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/store/migrations"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// syncBuffer is an io.Writer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logAddr finds the address in the JSON log line with message msg:
// "listening" once the server answers, "ready" once it serves the API and
// the site.
func logAddr(logs, msg string) string {
	for _, line := range strings.Split(logs, "\n") {
		var l struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
			return l.Addr
		}
	}
	return ""
}

// serveInProcess runs `conduit serve` through run() on a random port and a
// temp data dir, waits until it is ready, and stops it when the test ends.
func serveInProcess(t *testing.T, extra ...string) (base string, logs *syncBuffer) {
	t.Helper()
	return serveInProcessUntil(t, "ready", extra...)
}

// serveInProcessUntil is serveInProcess waiting for the log message msg.
func serveInProcessUntil(t *testing.T, msg string, extra ...string) (base string, logs *syncBuffer) {
	t.Helper()
	base, logs, _ = serveInProcessEnv(t, msg, nil, extra...)
	return base, logs
}

// serveInProcessEnv is serveInProcessUntil with the environment env; stop
// ends the server (before the test ends, if called).
func serveInProcessEnv(t *testing.T, msg string, env map[string]string, extra ...string) (base string, logs *syncBuffer, stop func()) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--log-format", "json", "--bcrypt-cost", "4"}, extra...)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, logs, logs) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	t.Cleanup(stop)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if addr := logAddr(logs.String(), msg); addr != "" {
			return "http://" + addr, logs, stop
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before listening: %v\n%s", err, logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not start:\n%s", logs)
	return "", nil, nil
}

// client talks JSON to a Conduit server.
type client struct {
	t     testing.TB
	base  string
	token string
	http  *http.Client
}

func newClient(t testing.TB, base string) *client {
	return &client{t: t, base: base, http: &http.Client{Timeout: 30 * time.Second}}
}

// call sends body as JSON and decodes a JSON answer into out (if not nil).
// It returns the status; transport errors fail the test.
func (c *client) call(method, path string, body, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Token "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, path, err)
		return -1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Errorf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	res, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (c *client) register(name string) {
	c.t.Helper()
	var out struct{ User struct{ Token string } }
	if st := c.call("POST", "/api/users", map[string]any{"user": map[string]string{
		"username": name, "email": name + "@example.com", "password": "password-" + name,
	}}, &out); st != http.StatusCreated {
		c.t.Fatalf("register %s: status %d", name, st)
	}
	c.token = out.User.Token
}

type articleOut struct {
	Article struct {
		Slug           string
		Body           string
		TagList        []string
		FavoritesCount int
		Favorited      bool
	}
}

// (a) The server answers health, readiness and metrics, and the metrics
// count requests per API route, their latency, and cache hits and misses.
func TestServeHealthAndMetrics(t *testing.T) {
	base, logs := serveInProcess(t, "--admin-addr", "127.0.0.1:0")
	c := newClient(t, base)
	if st, body := c.get("/healthz"); st != 200 || body != "ok\n" {
		t.Errorf("healthz = %d %q", st, body)
	}
	if st, _ := c.get("/readyz"); st != 200 {
		t.Errorf("readyz = %d", st)
	}
	c.register("metrics")
	for range 3 {
		if st := c.call("GET", "/api/user", nil, nil); st != 200 {
			t.Fatalf("GET /api/user = %d", st)
		}
	}
	var art articleOut
	c.call("POST", "/api/articles", map[string]any{"article": map[string]any{"title": "Metered", "description": "d", "body": "b"}}, &art)
	for range 2 {
		c.call("GET", "/api/articles/"+art.Article.Slug, nil, nil)
	}
	c.call("GET", "/api/tags", nil, nil)

	st, metrics := newClient(t, "http://"+listenerAddr(t, logs.String(), "admin listener")).get("/metrics")
	if st != 200 {
		t.Fatalf("metrics = %d", st)
	}
	for _, want := range []string{
		`conduit_http_requests_total{code="200",method="GET",route="GET /api/user"} 3`,
		`conduit_http_requests_total{code="201",method="POST",route="POST /api/users"} 1`,
		`conduit_http_requests_total{code="200",method="GET",route="GET /api/articles/{slug}"} 2`,
		`conduit_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		`conduit_http_request_duration_seconds_bucket{method="GET",route="GET /api/user",le="0.1"}`,
		`conduit_http_request_duration_seconds_count{method="GET",route="GET /api/user"} 3`,
		`conduit_cache_hits_total{cache="memory"}`,
		`conduit_cache_misses_total{cache="memory"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if v := metricValue(metrics, `conduit_cache_hits_total{cache="memory"}`); v < 1 {
		t.Errorf("cache hits = %v after reading one article twice", v)
	}
	if v := metricValue(metrics, `conduit_cache_misses_total{cache="memory"}`); v < 1 {
		t.Errorf("cache misses = %v", v)
	}
	// The request log has no secrets.
	if strings.Contains(logs.String(), c.token) || strings.Contains(logs.String(), "password-metrics") {
		t.Error("the log contains a token or a password")
	}
}

func metricValue(metrics, name string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

// (b) 40 concurrent clients register, write articles and comment on each
// other's articles; nobody gets a 5xx and every write is there afterwards.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	// Forty people sign up from one address (the test's): more than the
	// default sign-up limit per address allows, so it is lifted.
	base, logs := serveInProcess(t, "--signup-max-per-addr", "0")
	const clients, rounds = 40, 5
	var (
		mu        sync.Mutex
		statuses  = map[int]int{}
		created   = map[string]bool{}    // acknowledged articles
		commented = map[string]int{}     // acknowledged comments per article
		favorited = map[[2]string]bool{} // acknowledged (user, article) favorites
	)
	slugs := make(chan string, clients*rounds)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t, base)
			name := fmt.Sprintf("client%d", i)
			c.register(name)
			record := func(st int, ok func()) {
				mu.Lock()
				defer mu.Unlock()
				statuses[st]++
				if st >= 200 && st < 300 && ok != nil {
					ok()
				}
			}
			for r := range rounds {
				var art articleOut
				st := c.call("POST", "/api/articles", map[string]any{"article": map[string]any{
					"title": fmt.Sprintf("Client %d round %d", i, r), "description": "d", "body": "b",
					"tagList": []string{"load", name},
				}}, &art)
				record(st, func() { created[art.Article.Slug] = true })
				if st == http.StatusCreated {
					slugs <- art.Article.Slug
				}
				// Comment on and favorite someone's article (maybe one's own).
				select {
				case s := <-slugs:
					record(c.call("POST", "/api/articles/"+s+"/comments", map[string]any{"comment": map[string]string{"body": "hi"}}, nil),
						func() { commented[s]++ })
					record(c.call("POST", "/api/articles/"+s+"/favorite", nil, nil),
						func() { favorited[[2]string{name, s}] = true })
					record(c.call("GET", "/api/articles?limit=5", nil, nil), nil)
					slugs <- s
				default:
				}
				record(c.call("GET", "/api/articles/feed", nil, nil), nil)
			}
		}()
	}
	wg.Wait()
	for st, n := range statuses {
		if st >= 500 || st < 0 {
			t.Errorf("%d answers with status %d", n, st)
		}
	}
	if len(created) != clients*rounds {
		t.Errorf("%d articles created, want %d (statuses %v)", len(created), clients*rounds, statuses)
	}
	if strings.Contains(logs.String(), "database is locked") || strings.Contains(logs.String(), "SQLITE_BUSY") {
		t.Error("the log shows a locked database")
	}

	// Every acknowledged write is there, exactly once.
	c := newClient(t, base)
	favoritesPerArticle := map[string]int{}
	for k := range favorited {
		favoritesPerArticle[k[1]]++
	}
	seen := 0
	for offset := 0; offset < clients*rounds; offset += 100 {
		var page struct {
			Articles []struct {
				Slug           string
				FavoritesCount int
			}
			ArticlesCount int
		}
		c.call("GET", fmt.Sprintf("/api/articles?tag=load&limit=100&offset=%d", offset), nil, &page)
		if page.ArticlesCount != len(created) {
			t.Fatalf("articlesCount = %d, want %d", page.ArticlesCount, len(created))
		}
		for _, a := range page.Articles {
			seen++
			if !created[a.Slug] {
				t.Errorf("unexpected article %s", a.Slug)
			}
			if a.FavoritesCount != favoritesPerArticle[a.Slug] {
				t.Errorf("%s: favoritesCount %d, want %d", a.Slug, a.FavoritesCount, favoritesPerArticle[a.Slug])
			}
			var cs struct{ Comments []json.RawMessage }
			c.call("GET", "/api/articles/"+a.Slug+"/comments", nil, &cs)
			if len(cs.Comments) != commented[a.Slug] {
				t.Errorf("%s: %d comments, want %d", a.Slug, len(cs.Comments), commented[a.Slug])
			}
		}
	}
	if seen != len(created) {
		t.Errorf("listed %d articles, want %d", seen, len(created))
	}
	t.Logf("statuses %v; %d favorites, %d articles with comments", statuses, len(favorited), len(commented))
}

// conduitBin is this command, built once for the test run (testproc.Shared).
var conduitBin = testproc.Binary{Pkg: testproc.ConduitPkg}

func TestMain(m *testing.M) {
	storetest.Main(m) // drops the PostgreSQL template database of the run
}

// proc is a conduit server running as a child process.
type proc struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan error
}

// startBinary starts `conduit serve` on dataDir and a random port, and
// waits until it is ready.
func startBinary(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	return startBinaryUntil(t, "ready", dataDir, extra...)
}

// startBinaryUntil is startBinary waiting for the log message msg.
func startBinaryUntil(t *testing.T, msg, dataDir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json", "--bcrypt-cost", "4"}, extra...)
	cmd := exec.Command(conduitBin.Path(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	p := &proc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.logs.Write(append(sc.Bytes(), '\n'))
			if a := logAddr(sc.Text(), msg); a != "" {
				addr <- a
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
	case err := <-p.done:
		t.Fatalf("conduit exited before listening: %v\n%s", err, p.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("conduit did not start:\n%s", p.logs)
	}
	return p
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("conduit did not exit:\n%s", p.logs)
		return nil
	}
}

// (c) A server killed with SIGKILL and restarted on the same data dir keeps
// every acknowledged write, and tokens issued before the kill still work.
func TestSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel() // nothing shared: its own databases (and servers)
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	dataDir := t.TempDir()
	p := startBinary(t, dataDir)
	alice, bob := newClient(t, p.base), newClient(t, p.base)
	alice.register("alice")
	bob.register("bob")
	if st := alice.call("PUT", "/api/user", map[string]any{"user": map[string]string{"bio": "before the crash"}}, nil); st != 200 {
		t.Fatalf("update user = %d", st)
	}
	var slugs []string
	for i := range 10 {
		var art articleOut
		if st := alice.call("POST", "/api/articles", map[string]any{"article": map[string]any{
			"title": fmt.Sprintf("Durable %d", i), "description": "d", "body": fmt.Sprintf("body %d", i), "tagList": []string{"durable"},
		}}, &art); st != http.StatusCreated {
			t.Fatalf("create = %d", st)
		}
		slugs = append(slugs, art.Article.Slug)
		if st := bob.call("POST", "/api/articles/"+art.Article.Slug+"/comments", map[string]any{"comment": map[string]string{"body": fmt.Sprint("comment ", i)}}, nil); st != 200 {
			t.Fatalf("comment = %d", st)
		}
		if st := bob.call("POST", "/api/articles/"+art.Article.Slug+"/favorite", nil, nil); st != 200 {
			t.Fatalf("favorite = %d", st)
		}
	}
	if st := bob.call("POST", "/api/profiles/alice/follow", nil, nil); st != 200 {
		t.Fatalf("follow = %d", st)
	}
	// Writers keep going while the server is killed: whatever was answered
	// 201 before the kill must survive it.
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b, _ := json.Marshal(map[string]any{"article": map[string]any{
					"title": fmt.Sprintf("Inflight %d %d", w, i), "description": "d", "body": "b"}})
				req, _ := http.NewRequest("POST", p.base+"/api/articles", bytes.NewReader(b))
				req.Header.Set("Authorization", "Token "+alice.token)
				req.Header.Set("Content-Type", "application/json")
				res, err := hc.Do(req)
				if err != nil {
					return // the server is gone
				}
				var out articleOut
				json.NewDecoder(res.Body).Decode(&out)
				res.Body.Close()
				if res.StatusCode == http.StatusCreated {
					mu.Lock()
					acked = append(acked, out.Article.Slug)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	// Kill at once, with no chance to flush or shut down.
	if err := p.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no write was answered before the kill")
	}

	p2 := startBinary(t, dataDir)
	alice.base, bob.base = p2.base, p2.base
	var me struct {
		User struct{ Username, Bio string }
	}
	if st := alice.call("GET", "/api/user", nil, &me); st != 200 || me.User.Username != "alice" || me.User.Bio != "before the crash" {
		t.Fatalf("old token after restart: %d %+v", st, me.User)
	}
	for i, s := range slugs {
		var art articleOut
		if st := bob.call("GET", "/api/articles/"+s, nil, &art); st != 200 {
			t.Errorf("article %s after restart: %d", s, st)
			continue
		}
		if art.Article.Body != fmt.Sprintf("body %d", i) || !art.Article.Favorited || art.Article.FavoritesCount != 1 || len(art.Article.TagList) != 1 {
			t.Errorf("article %s after restart = %+v", s, art.Article)
		}
		var cs struct{ Comments []struct{ Body string } }
		bob.call("GET", "/api/articles/"+s+"/comments", nil, &cs)
		if len(cs.Comments) != 1 || cs.Comments[0].Body != fmt.Sprint("comment ", i) {
			t.Errorf("comments of %s after restart = %+v", s, cs.Comments)
		}
	}
	for _, s := range acked {
		if st := bob.call("GET", "/api/articles/"+s, nil, nil); st != 200 {
			t.Errorf("article %s, answered 201 before the kill, is gone: %d", s, st)
		}
	}
	t.Logf("%d writes were answered while the server was being killed", len(acked))
	// The feed is filled by jobs (stage 7) that the writes enqueued in
	// their own transactions: those left undone by the kill run after the
	// restart, so the feed catches up instead of losing articles.
	var feed struct{ ArticlesCount int }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		bob.call("GET", "/api/articles/feed", nil, &feed)
		if feed.ArticlesCount >= len(slugs)+len(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("bob's feed 30 s after restart has %d articles, want at least %d", feed.ArticlesCount, len(slugs)+len(acked))
			break
		}
	}
	if err := p2.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := p2.wait(t); err != nil {
		t.Errorf("exit after SIGINT: %v", err)
	}
}

// (d) On SIGTERM /readyz fails during the drain delay while other requests
// still succeed, a request in flight (its body still arriving) finishes,
// and the process exits 0.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary through a drain")
	}
	t.Parallel() // its own process, data dir and port; mostly waits (the build, the drain)
	const drain = 2 * time.Second
	dataDir := t.TempDir()
	p := startBinary(t, dataDir, "--drain-delay", drain.String())
	c := newClient(t, p.base)
	c.register("early")

	// A registration whose body arrives slowly, across the whole drain.
	body := `{"user":{"username":"slowpoke","email":"slow@example.com","password":"12345678"}}`
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", p.base+"/api/users", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	slow := make(chan int, 1)
	go func() {
		res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Errorf("slow request: %v", err)
			slow <- -1
			return
		}
		res.Body.Close()
		slow <- res.StatusCode
	}()
	if _, err := pw.Write([]byte(body[:10])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server is reading its body

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	// During the drain: not ready, yet serving.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	sawNotReady := false
	for time.Since(stopAt) < drain-500*time.Millisecond {
		res, err := fresh.Get(p.base + "/readyz")
		if err != nil {
			t.Fatalf("readyz during drain: %v", err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusServiceUnavailable {
			sawNotReady = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawNotReady {
		t.Error("readyz did not fail after SIGTERM")
	}
	res, err := fresh.Get(p.base + "/api/tags")
	if err != nil || res.StatusCode != 200 {
		t.Errorf("API during drain: %v %v", err, res)
	} else {
		res.Body.Close()
	}

	// Finish the slow body after the drain delay, when shutdown has begun.
	time.Sleep(time.Until(stopAt.Add(drain + 300*time.Millisecond)))
	select {
	case err := <-p.done:
		t.Fatalf("process exited with a request in flight: %v", err)
	default:
	}
	if _, err := pw.Write([]byte(body[10:])); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if st := <-slow; st != http.StatusCreated {
		t.Errorf("in-flight registration = %d, want 201", st)
	}
	if err := p.wait(t); err != nil {
		t.Errorf("exit status: %v, want 0\n%s", err, p.logs)
	}
	// The in-flight write was kept.
	p2 := startBinary(t, dataDir)
	c2 := newClient(t, p2.base)
	if st := c2.call("POST", "/api/users/login", map[string]any{"user": map[string]string{"email": "slow@example.com", "password": "12345678"}}, nil); st != 200 {
		t.Errorf("login of the in-flight registration after restart = %d", st)
	}
}

// (e) The command line: help, flags, bad input and migrate.
func TestCommandLine(t *testing.T) {
	noEnv := func(string) string { return "" }
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		ok      bool   // run returns nil (or flag.ErrHelp)
		output  string // expected in stdout+stderr+error
		errText string // expected in the error
	}{
		{"help", []string{"help"}, nil, true, "Commands:", ""},
		{"--help", []string{"--help"}, nil, true, "serve", ""},
		{"serve --help", []string{"serve", "--help"}, nil, true, "CONDUIT_DATA_DIR", ""},
		{"migrate --help", []string{"migrate", "--help"}, nil, true, "--database-url", ""},
		{"no command", nil, nil, false, "Usage", "no command"},
		{"unknown command", []string{"frobnicate"}, nil, false, "Usage", "frobnicate"},
		{"unknown flag", []string{"serve", "--frob"}, nil, false, "frob", "frob"},
		{"bad duration", []string{"serve", "--drain-delay", "soon"}, nil, false, "drain-delay", "drain-delay"},
		{"bad env value", []string{"serve"}, map[string]string{"CONDUIT_CACHE_ITEMS": "lots"}, false, "", "CONDUIT_CACHE_ITEMS"},
		{"bad log level", []string{"serve", "--log-level", "chatty"}, nil, false, "", "log-level"},
		{"stray argument", []string{"migrate", "now"}, nil, false, "", "now"},
		{"bad address", []string{"serve", "--addr", "nonsense:99999", "--data-dir", "DATADIR"}, nil, false, "", "99999"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			getenv := noEnv
			if c.env != nil {
				getenv = func(k string) string { return c.env[k] }
			}
			args := slicesReplace(c.args, "DATADIR", t.TempDir())
			var out syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := run(ctx, args, getenv, &out, &out)
			if c.ok && err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("run(%q) = %v", args, err)
			}
			if !c.ok && err == nil {
				t.Fatalf("run(%q) succeeded", args)
			}
			all := out.String()
			if err != nil {
				all += err.Error()
			}
			if !strings.Contains(all, c.output) {
				t.Errorf("output lacks %q:\n%s", c.output, all)
			}
			if c.errText != "" && !strings.Contains(err.Error(), c.errText) {
				t.Errorf("error %q does not mention %q", err, c.errText)
			}
		})
	}

	t.Run("migrate", func(t *testing.T) {
		dir := t.TempDir()
		all, err := migrations.List("sqlite")
		if err != nil {
			t.Fatal(err)
		}
		first := fmt.Sprintf("applied %d migration(s)", len(all))
		for i, want := range []string{first, "applied 0 migration(s)"} {
			var out syncBuffer
			if err := run(context.Background(), []string{"migrate", "--data-dir", dir}, noEnv, &out, &out); err != nil {
				t.Fatalf("migrate #%d: %v", i+1, err)
			}
			if !strings.Contains(out.String(), want) {
				t.Errorf("migrate #%d said %q, want %q", i+1, out.String(), want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "conduit.db")); err != nil {
			t.Errorf("no database file: %v", err)
		}
		// CONDUIT_DATA_DIR is the environment equivalent.
		envDir := t.TempDir()
		var out syncBuffer
		if err := run(context.Background(), []string{"migrate"}, func(k string) string {
			if k == "CONDUIT_DATA_DIR" {
				return envDir
			}
			return ""
		}, &out, &out); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(envDir, "conduit.db")); err != nil {
			t.Errorf("CONDUIT_DATA_DIR ignored: %v", err)
		}
	})

	t.Run("binary exit codes", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: builds the binary")
		}
		bin := conduitBin.Path(t)
		for _, c := range []struct {
			args   []string
			code   int
			stderr string
		}{
			{[]string{"--help"}, 0, ""},
			{[]string{"serve", "--help"}, 0, "--addr"},
			{[]string{"serve", "--nope"}, 1, "flag provided but not defined: -nope"},
			{[]string{"serve", "--token-ttl", "x"}, 1, "token-ttl"},
			{[]string{"bogus"}, 1, `unknown command "bogus"`},
		} {
			cmd := exec.Command(bin, c.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code || !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("conduit %q: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, stderr.String(), c.code, c.stderr)
			}
		}
	})
}

func slicesReplace(s []string, old, new string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		if v == old {
			v = new
		}
		out[i] = v
	}
	return out
}

// A second SIGTERM during a long drain ends the process at once, for an
// operator who does not want to wait.
func TestSecondSIGTERMExitsAtOnce(t *testing.T) {
	t.Parallel() // nothing shared: its own databases (and servers)
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	p := startBinary(t, t.TempDir(), "--drain-delay", "60s")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Wait until the first signal has been handled: /readyz fails.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		res, err := http.Get(p.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("/readyz never failed after SIGTERM")
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := p.wait(t) // fails the test if the process is still draining after 30 s
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("want the process killed by the second SIGTERM, got %v", err)
	}
}

// --cache-items 0 runs without a cache: reads are served (fresh) from the
// database and no cache counters are exported.
func TestServeWithoutCache(t *testing.T) {
	base, logs := serveInProcess(t, "--cache-items", "0", "--admin-addr", "127.0.0.1:0")
	c := newClient(t, base)
	c.register("nocache")
	var art articleOut
	c.call("POST", "/api/articles", map[string]any{"article": map[string]any{"title": "Uncached", "description": "d", "body": "v1"}}, &art)
	c.call("PUT", "/api/articles/"+art.Article.Slug, map[string]any{"article": map[string]any{"body": "v2"}}, nil)
	var got struct {
		Article struct{ Body string } `json:"article"`
	}
	if st := c.call("GET", "/api/articles/"+art.Article.Slug, nil, &got); st != 200 || got.Article.Body != "v2" {
		t.Fatalf("GET article = %d, body %q; want 200, v2", st, got.Article.Body)
	}
	st, metrics := newClient(t, "http://"+listenerAddr(t, logs.String(), "admin listener")).get("/metrics")
	if st != 200 || strings.Contains(metrics, "conduit_cache_hits_total") {
		t.Error("metrics export cache counters although there is no cache")
	}
}
