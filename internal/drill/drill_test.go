//go:build linux

package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// Timeline of the drill (the load runs throughout).
const (
	workers      = 6
	pause        = 8 * time.Millisecond // between one worker's requests
	killAfter    = 4 * time.Second      // SIGKILL node 2 this long after the load starts
	downFor      = 5 * time.Second      // then start it again this much later
	settle       = 2 * time.Second      // before the rolling restart, and after it
	drainDelay   = "3s"                 // see deploy/haproxy/haproxy.cfg: > 1 s + 250 ms + 1 s
	writeTimeout = 30 * time.Second     // a client gives up on a write after retrying this long
)

// onlyInDrills skips a drill under -short, and unless CI=true or env is
// set: a drill takes half a minute or more and needs binaries (needs) that
// a plain go test does not.
func onlyInDrills(t *testing.T, what, env, needs string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: the %s takes half a minute or more", what)
	}
	if os.Getenv("CI") != "true" && os.Getenv(env) == "" {
		t.Skipf("the %s runs with CI=true or %s=1 (needs %s)", what, env, needs)
	}
	testproc.LoadShared(t)
}

// haproxyPath is the haproxy binary the drills balance their nodes with.
func haproxyPath(t *testing.T) string {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed (apt-get install haproxy): the drill cannot run")
	}
	return haproxy
}

func TestDrill(t *testing.T) {
	onlyInDrills(t, "failover drill", "CONDUIT_DRILL", "haproxy and PostgreSQL 15 binaries")
	t.Parallel() // see doc.go
	haproxy := haproxyPath(t)
	pgbin := os.Getenv(storetest.PGBinEnv)
	if pgbin == "" {
		pgbin = "/usr/lib/postgresql/15/bin"
	}
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(pgbin, b)); err != nil {
			t.Fatalf("PostgreSQL binary %s not found in %s (set %s or apt-get install postgresql): %v", b, pgbin, storetest.PGBinEnv, err)
		}
	}

	dir := testproc.LogDir(t, "conduit-drill-")
	ports := freePorts(t, 5)
	lbPort, statsPort := ports[0], ports[1]
	nodePorts := ports[2:]

	bin := conduitBin.Path(t) // the binary under test

	var procs procSet
	t.Cleanup(procs.stopAll)

	// A throwaway PostgreSQL cluster, run as the postgres user when root.
	pg := storetest.StartCluster(t, "max_connections=200")
	pg.CreateDatabase("conduit")
	dbURL := pg.URL("conduit")

	// One signing key for every node: any node accepts any token.
	var key [32]byte
	rand.Read(key[:])
	env := append(os.Environ(), "CONDUIT_DATABASE_URL="+dbURL, "CONDUIT_JWT_KEYS=k1:"+base64.StdEncoding.EncodeToString(key[:]))
	if out, err := cmdWithEnv(env, bin, "migrate").CombinedOutput(); err != nil {
		t.Fatalf("conduit migrate: %v\n%s", err, out)
	}
	nodes := make([]*proc, len(nodePorts))
	startNode := func(i int) {
		nodes[i] = procs.start(t, fmt.Sprintf("node%d", i+1), filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)), nil, env,
			bin, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", nodePorts[i]), "--drain-delay", drainDelay,
			"--shutdown-timeout", "10s", "--trusted-proxies", "127.0.0.1", "--log-format", "json")
	}
	for i := range nodes {
		startNode(i)
	}
	for i := range nodes {
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", nodePorts[i]), 30*time.Second)
	}

	stats := startHAProxy(t, &procs, dir, haproxy, lbPort, statsPort, nodePorts)

	lb := fmt.Sprintf("http://127.0.0.1:%d", lbPort)
	l := newLoad(lb)
	l.setup(t)
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); l.worker(ctx, w) }()
	}
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("[%5.1fs] %s", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}

	time.Sleep(killAfter)
	logf("SIGKILL node2")
	nodes[1].signal(syscall.SIGKILL)
	nodes[1].wait(10 * time.Second)
	time.Sleep(downFor)
	logf("start node2 again")
	startNode(1)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", nodePorts[1]), 30*time.Second)
	waitUp(t, stats, "node2", 20*time.Second)
	logf("node2 is back in rotation")
	time.Sleep(settle)

	for i := range nodes {
		logf("SIGTERM node%d (rolling restart)", i+1)
		nodes[i].signal(syscall.SIGTERM)
		if err := nodes[i].wait(30 * time.Second); err != nil {
			t.Errorf("node%d did not exit cleanly after SIGTERM: %v", i+1, err)
		}
		startNode(i)
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", nodePorts[i]), 30*time.Second)
		waitUp(t, stats, fmt.Sprintf("node%d", i+1), 20*time.Second)
		logf("node%d restarted and back in rotation", i+1)
	}
	time.Sleep(settle)
	stopLoad()
	wg.Wait()
	elapsed := time.Since(began)

	var lbStats []string
	for _, f := range []string{"wretr", "wredis", "econ", "eresp", "hrsp_5xx"} {
		v, _ := statsField(stats, "BACKEND", f)
		lbStats = append(lbStats, f+"="+v)
	}

	// Every write the clients saw acknowledged must be there exactly once,
	// and nothing may be there twice.
	present, dup := l.verify(t, dbURL)
	r := &l.stats
	summary := fmt.Sprintf(`failover drill: %.1f s of load through HAProxy on 3 nodes
  requests sent:        %d (reads %d, write attempts %d incl. %d client retries)
  failed reads:         %d (stale reads after an acknowledged write: %d)
  writes acknowledged:  %d of %d (failed writes: %d; applied but response lost: %d)
  acknowledged present: %d of %d
  applied twice:        %d
  responses: 409 in-flight %d, 503 %d, 502/504 %d, replayed (Idempotent-Replayed) %d
  HAProxy backend: %s (retries, redispatches, connection errors, response errors, 5xx)`,
		elapsed.Seconds(), r.reads.Load()+r.writeAttempts.Load(), r.reads.Load(), r.writeAttempts.Load(), r.retries.Load(),
		r.failedReads.Load(), r.staleReads.Load(), r.acked.Load(), r.writes.Load(), r.failedWrites.Load(), r.lost.Load(),
		present, r.acked.Load(), dup, r.conflicts.Load(), r.unavailable.Load(), r.gateway.Load(), r.replayed.Load(), strings.Join(lbStats, " "))
	l.report(t, summary, "CONDUIT_DRILL_REPORT", present, dup)
}

// report prints a drill's summary, writes it to the file named by the
// environment variable reportEnv, logs the failures seen, and checks what
// every drill demands: no failed or stale read, every acknowledged write
// present (present of them were found), none applied twice (dup were).
func (l *load) report(t *testing.T, summary, reportEnv string, present, dup int) {
	t.Helper()
	fmt.Println(summary)
	t.Log("\n" + summary)
	// go test shows a passing test's output only with -v; CI asks for the
	// numbers in a file so that it can run the plain `go test ./...`.
	if path := os.Getenv(reportEnv); path != "" {
		if err := os.WriteFile(path, []byte(summary+"\n"), 0o644); err != nil {
			t.Errorf("write drill report: %v", err)
		}
	}
	for _, f := range l.failureLog() {
		t.Log("  " + f)
	}
	if l.dumps != nil && len(l.failureLog()) > 0 {
		l.dumps.report(t)
	}
	r := &l.stats
	if r.failedReads.Load() != 0 {
		t.Errorf("%d reads failed; want 0", r.failedReads.Load())
	}
	if r.staleReads.Load() != 0 {
		t.Errorf("%d reads right after an acknowledged write showed the old value; want 0", r.staleReads.Load())
	}
	if present != int(r.acked.Load()) {
		t.Errorf("%d of %d acknowledged writes are missing", int(r.acked.Load())-present, r.acked.Load())
	}
	if dup != 0 {
		t.Errorf("%d writes were applied twice", dup)
	}
	if r.acked.Load() == 0 || r.reads.Load() == 0 {
		t.Errorf("the load generator did not do anything useful")
	}
}

// ---- load generator ----

type loadStats struct {
	reads, failedReads, staleReads      atomic.Int64
	writes, writeAttempts, retries      atomic.Int64
	acked, failedWrites, lost, replayed atomic.Int64
	conflicts, unavailable, gateway     atomic.Int64
}

type account struct {
	name, token, slug string
}

type load struct {
	base   string
	client *http.Client
	users  []account
	stats  loadStats
	// nodes are the nodes' own URLs, for reads that must land on a given
	// node (stage 4), and ownReads counts those reads.
	nodes    []string
	ownReads atomic.Int64

	// dumps, if set, takes the nodes' goroutines when a request is slow
	// (see slowDumps).
	dumps *slowDumps

	mu       sync.Mutex
	ackedC   []string      // bodies of acknowledged comments
	ackedA   []string      // titles of acknowledged articles
	ackedBio map[int][]int // worker -> sequence numbers of its acknowledged bio updates
	ackedAt  []time.Time   // when each write was acknowledged, in order
	failures []string
}

func newLoad(base string) *load {
	return &load{base: base, ackedBio: map[int][]int{}, client: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: 5 * time.Second},
	}}
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 30 {
		// The wall clock, to find the moment in the servers' logs.
		l.failures = append(l.failures, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func (l *load) failureLog() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

func (l *load) do(method, path, token, key, body string) (int, []byte, http.Header, error) {
	return l.doAt(l.base, method, path, token, key, body)
}

// doAt is do against another base URL (one node, not the balancer).
func (l *load) doAt(base, method, path, token, key, body string) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if l.dumps != nil {
		t := time.AfterFunc(slowAfter, l.dumps.take)
		defer t.Stop()
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// write sends a keyed write, retrying on anything that may be transient
// until it is acknowledged (2xx) or writeTimeout passes.
func (l *load) write(method, path, token, key, body string, into func(b []byte) error) bool {
	l.stats.writes.Add(1)
	deadline := time.Now().Add(writeTimeout)
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			l.stats.retries.Add(1)
		}
		l.stats.writeAttempts.Add(1)
		st, b, h, err := l.do(method, path, token, key, body)
		switch {
		case err == nil && st/100 == 2:
			if h.Get("Idempotent-Replayed") == "true" {
				l.stats.replayed.Add(1)
			}
			if into != nil {
				if err := into(b); err != nil {
					l.fail("write %s %s: bad response %s", method, path, b)
				}
			}
			l.stats.acked.Add(1)
			l.mu.Lock()
			l.ackedAt = append(l.ackedAt, time.Now())
			l.mu.Unlock()
			return true
		case err == nil && st == http.StatusConflict && bytes.Contains(b, []byte("was applied")):
			l.stats.lost.Add(1)
			return false // applied, but not acknowledged: fine, verified as "not twice"
		case err == nil && st == http.StatusConflict:
			l.stats.conflicts.Add(1)
		case err == nil && st == http.StatusServiceUnavailable:
			l.stats.unavailable.Add(1)
		case err == nil && (st == http.StatusBadGateway || st == http.StatusGatewayTimeout):
			l.stats.gateway.Add(1)
		case err == nil:
			l.stats.failedWrites.Add(1)
			l.fail("write %s %s: status %d %s", method, path, st, b)
			return false
		}
		if time.Now().After(deadline) {
			l.stats.failedWrites.Add(1)
			l.fail("write %s %s gave up after %d attempts: last status %d err %v", method, path, attempt+1, st, err)
			return false
		}
		time.Sleep(backoff)
		backoff = min(backoff*3/2, time.Second)
	}
}

func (l *load) read(path, token string) {
	l.stats.reads.Add(1)
	st, b, _, err := l.do("GET", path, token, "", "")
	if err != nil || st != http.StatusOK {
		l.stats.failedReads.Add(1)
		if st == http.StatusServiceUnavailable {
			l.stats.unavailable.Add(1)
		}
		l.fail("read %s: status %d err %v body %.200s", path, st, err, b)
	}
}

func (l *load) setup(t *testing.T) {
	var suffix [4]byte
	rand.Read(suffix[:])
	for i := range workers { // one user per worker: only it changes its bio
		name := fmt.Sprintf("drill%d%x", i, suffix)
		u := account{name: name}
		ok := l.write("POST", "/api/users", "", "register-"+name,
			fmt.Sprintf(`{"user":{"username":%q,"email":"%s@example.com","password":"drill-password"}}`, name, name),
			func(b []byte) error {
				var out struct{ User struct{ Token string } }
				if err := json.Unmarshal(b, &out); err != nil || out.User.Token == "" {
					return errors.New("no token")
				}
				u.token = out.User.Token
				return nil
			})
		if !ok {
			t.Fatalf("setup: register %s failed: %v", name, l.failureLog())
		}
		ok = l.write("POST", "/api/articles", u.token, "article-"+name,
			fmt.Sprintf(`{"article":{"title":"Drill base %s","description":"d","body":"b","tagList":["drill"]}}`, name),
			func(b []byte) error {
				var out struct{ Article struct{ Slug string } }
				if err := json.Unmarshal(b, &out); err != nil || out.Article.Slug == "" {
					return errors.New("no slug")
				}
				u.slug = out.Article.Slug
				return nil
			})
		if !ok {
			t.Fatalf("setup: article of %s failed: %v", name, l.failureLog())
		}
		l.users = append(l.users, u)
	}
	l.stats = loadStats{} // count the drill, not the setup
}

// comment posts worker w's comment n on u's article and, when the write is
// acknowledged, counts it among the comments the database must keep.
func (l *load) comment(u account, w, n int) (body string, acked bool) {
	body = fmt.Sprintf("drill-w%d-%d", w, n)
	if !l.write("POST", "/api/articles/"+u.slug+"/comments", u.token, "c-"+body,
		fmt.Sprintf(`{"comment":{"body":%q}}`, body), nil) {
		return body, false
	}
	l.mu.Lock()
	l.ackedC = append(l.ackedC, body)
	l.mu.Unlock()
	return body, true
}

func (l *load) worker(ctx context.Context, w int) {
	for n := 0; ctx.Err() == nil; n++ {
		u := l.users[(w+n)%len(l.users)]
		switch n % 8 {
		case 0:
			l.read("/api/articles?limit=10", "")
		case 1:
			l.read("/api/articles/"+u.slug, u.token)
		case 2:
			l.read("/api/articles/"+u.slug+"/comments", "")
		case 3:
			l.read("/api/tags", "")
		case 4:
			l.read("/api/profiles/"+u.name, "")
		case 5:
			l.read("/api/articles/feed?limit=5", u.token)
		case 6:
			l.comment(u, w, n)
		case 7:
			if n%32 == 15 {
				// Change this worker's own bio, then read the (cached)
				// profile through the balancer: whichever node answers
				// must show the new bio.
				me := l.users[w]
				bio := fmt.Sprintf("bio-w%d-%d", w, n)
				if !l.write("PUT", "/api/user", me.token, "u-"+bio, fmt.Sprintf(`{"user":{"bio":%q}}`, bio), nil) {
					break
				}
				l.mu.Lock()
				l.ackedBio[w] = append(l.ackedBio[w], n)
				l.mu.Unlock()
				l.stats.reads.Add(1)
				st, b, _, err := l.do("GET", "/api/profiles/"+me.name, "", "", "")
				switch {
				case err != nil || st != http.StatusOK:
					l.stats.failedReads.Add(1)
					l.fail("read profile %s: status %d err %v", me.name, st, err)
				case !bytes.Contains(b, []byte(`"bio":"`+bio+`"`)):
					l.stats.staleReads.Add(1)
					l.fail("stale profile right after an acknowledged update to %q: %s", bio, b)
				}
				break
			}
			if n%32 != 7 {
				l.read("/api/user", u.token)
				break
			}
			title := fmt.Sprintf("Drill article w%d n%d", w, n)
			if l.write("POST", "/api/articles", u.token, "a-"+title,
				fmt.Sprintf(`{"article":{"title":%q,"description":"d","body":"b","tagList":["drill"]}}`, title), nil) {
				l.mu.Lock()
				l.ackedA = append(l.ackedA, title)
				l.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// verify counts, in the database, the acknowledged writes present and the
// drill's writes that exist more than once.
func (l *load) verify(t *testing.T, dbURL string) (present, duplicates int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	defer conn.Close(ctx)
	count := func(q string) map[string]int {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		m := map[string]int{}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			m[k] = n
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		return m
	}
	comments := count(`SELECT body, count(*) FROM comments WHERE body LIKE 'drill-w%' GROUP BY body`)
	articles := count(`SELECT title, count(*) FROM articles WHERE title LIKE 'Drill %' GROUP BY title`)
	for _, b := range l.ackedC {
		if comments[b] >= 1 {
			present++
		} else {
			l.fail("acknowledged comment %q is missing", b)
		}
	}
	for _, a := range l.ackedA {
		if articles[a] >= 1 {
			present++
		} else {
			l.fail("acknowledged article %q is missing", a)
		}
	}
	// A bio is overwritten: an acknowledged update is present if the final
	// bio is it or a later update of the same worker.
	rows, err := conn.Query(ctx, `SELECT bio FROM users WHERE bio LIKE 'bio-w%'`)
	if err != nil {
		t.Fatal(err)
	}
	final := map[int]int{}
	for rows.Next() {
		var bio string
		var w, n int
		if err := rows.Scan(&bio); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Sscanf(bio, "bio-w%d-%d", &w, &n); err == nil {
			final[w] = n
		}
	}
	rows.Close()
	for w, ns := range l.ackedBio {
		for _, n := range ns {
			if f, ok := final[w]; ok && f >= n {
				present++
			} else {
				l.fail("acknowledged bio update bio-w%d-%d is not in the database (final: %d)", w, n, final[w])
			}
		}
	}
	for k, n := range comments {
		if n > 1 {
			duplicates++
			l.fail("comment %q exists %d times", k, n)
		}
	}
	for k, n := range articles {
		if n > 1 {
			duplicates++
			l.fail("article %q exists %d times", k, n)
		}
	}
	return present, duplicates
}

// ---- processes (on internal/testproc) ----

// proc is a process of a drill.
type proc struct{ *testproc.Proc }

func (p *proc) signal(sig syscall.Signal) { p.Signal(sig) }

func (p *proc) wait(d time.Duration) error { return p.Wait(d) }

// procSet is the processes a drill started.
type procSet struct {
	mu    sync.Mutex
	procs []*proc
}

// start runs argv as a child of the test (see testproc.Start), logging to
// logPath (appended, so restarts keep history); when the test ends it is
// stopped with SIGTERM, newest first.
func (s *procSet) start(t *testing.T, name, logPath string, cred *syscall.Credential, env []string, argv ...string) *proc {
	t.Helper()
	cmd := cmdWithEnv(env, argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	p := &proc{testproc.Start(t, name, logPath, cmd)}
	t.Cleanup(func() { p.Stop(syscall.SIGTERM, 20*time.Second) })
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p
}

// stopAll stops every process still running, newest first (balancer,
// then nodes), each by its own PID.
func (s *procSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Stop(syscall.SIGTERM, 20*time.Second)
	}
}

func cmdWithEnv(env []string, argv ...string) *exec.Cmd {
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = env
	return c
}

// freePorts finds n free TCP ports on 127.0.0.1 below the ephemeral range
// (where outgoing connections could take them while a node restarts).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	return testproc.StablePorts(t, n)
}

func waitHTTP(t *testing.T, url string, d time.Duration) {
	t.Helper()
	testproc.WaitHTTP(t, url, d)
}

// waitUp waits until HAProxy's stats say server is UP.
func waitUp(t *testing.T, statsURL, server string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		last = serverStatus(statsURL, server)
		if last == "UP" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("HAProxy did not mark %s UP within %v (status %q)", server, d, last)
}

func serverStatus(statsURL, server string) string {
	v, err := statsField(statsURL, server, "status")
	if err != nil {
		return err.Error()
	}
	return v
}

// statsField reads one column of one row of HAProxy's CSV stats, for the
// server (or "BACKEND") of the conduit_nodes backend.
func statsField(statsURL, server, field string) (string, error) {
	resp, err := http.Get(statsURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	r := csv.NewReader(resp.Body)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil || len(recs) == 0 {
		return "", fmt.Errorf("stats: %v", err)
	}
	col := -1
	for i, h := range recs[0] {
		if strings.TrimPrefix(h, "# ") == field {
			col = i
		}
	}
	for _, rec := range recs[1:] {
		if col >= 0 && len(rec) > col && rec[0] == "conduit_nodes" && rec[1] == server {
			return rec[col], nil
		}
	}
	return "", fmt.Errorf("stats: no %s/%s", server, field)
}

// startHAProxy runs HAProxy from the shipped template in front of the
// nodes on nodePorts, and returns its stats URL (CSV) once it sees every
// node up.
func startHAProxy(t *testing.T, procs *procSet, dir, haproxy string, lbPort, statsPort int, nodePorts []int) string {
	t.Helper()
	tmpl, err := os.ReadFile("../../deploy/haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	for i, p := range nodePorts {
		servers = append(servers, fmt.Sprintf("    server node%d 127.0.0.1:%d", i+1, p))
	}
	cfg := strings.NewReplacer("@LISTEN@", fmt.Sprintf("127.0.0.1:%d", lbPort), "@STATS@", fmt.Sprintf("127.0.0.1:%d", statsPort),
		"\n@SERVERS@\n", "\n"+strings.Join(servers, "\n")+"\n").Replace(string(tmpl))
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	procs.start(t, "haproxy", filepath.Join(dir, "haproxy.log"), nil, nil, haproxy, "-db", "-f", cfgPath)
	stats := fmt.Sprintf("http://127.0.0.1:%d/;csv", statsPort)
	for i := range nodePorts {
		waitUp(t, stats, fmt.Sprintf("node%d", i+1), 20*time.Second)
	}
	return stats
}
