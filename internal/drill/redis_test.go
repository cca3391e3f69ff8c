//go:build linux

package drill

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/storetest"
	"github.com/conduit-dev/conduit/internal/testproc"
)

// The stage-5 drill: three nodes behind HAProxy sharing one Redis cache
// tier (--cache-url), under readers and writers through the balancer,
// while Redis is SIGKILLed, restarted empty, and paused (SIGSTOP) for
// longer than --cache-timeout, the circuit breaker and the near-cache
// lease. Every acknowledged write is read back at once through the
// balancer and on every node: no read may fail and none may be stale.
const (
	writers5     = 3
	readers5     = 3
	pause5       = 5 * time.Millisecond
	cacheTimeout = "10ms"                  // --cache-timeout of the nodes (the default)
	killAt5      = 4 * time.Second         // SIGKILL Redis this long into the load
	down5        = 3 * time.Second         // restart it (empty) this much later
	pauseAt5     = 5 * time.Second         // then, this much later, SIGSTOP it
	paused5      = 2500 * time.Millisecond // ≫ 10 ms timeout, 3 failures, 500 ms lease
	settle5      = 5 * time.Second         // after SIGCONT, before the load stops
)

func TestDrillRedis(t *testing.T) {
	onlyInDrills(t, "Redis fault drill", "CONDUIT_DRILL5", "redis-server, haproxy and PostgreSQL 15 binaries")
	t.Parallel() // see doc.go
	haproxy := haproxyPath(t)
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv(redistest.BinEnv) == "" {
		t.Fatal("redis-server is not installed (apt-get install redis-server): the drill cannot run")
	}
	dir := testproc.LogDir(t, "conduit-drill5-")
	ports := freePorts(t, 8)
	lbPort, statsPort := ports[0], ports[1]
	nodePorts, adminPorts := ports[2:5], ports[5:8]
	bin := conduitBin.Path(t)

	var procs procSet
	t.Cleanup(procs.stopAll)
	// A throwaway PostgreSQL cluster, run as the postgres user when root.
	pg := storetest.StartCluster(t, "max_connections=200")
	pg.CreateDatabase("conduit")
	dbURL := pg.URL("conduit")
	// Started after procs' cleanup was registered, so stopped before the
	// nodes: they see Redis go away once more on the way down.
	rs := redistest.Start(t)

	var key [32]byte
	rand.Read(key[:])
	env := append(os.Environ(), "CONDUIT_DATABASE_URL="+dbURL, "CONDUIT_JWT_KEYS=k1:"+base64.StdEncoding.EncodeToString(key[:]))
	if out, err := cmdWithEnv(env, bin, "migrate").CombinedOutput(); err != nil {
		t.Fatalf("conduit migrate: %v\n%s", err, out)
	}
	var nodeURLs, admins []string
	for i := range nodePorts {
		procs.start(t, fmt.Sprintf("node%d", i+1), filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)), nil, env,
			bin, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", nodePorts[i]),
			"--admin-addr", fmt.Sprintf("127.0.0.1:%d", adminPorts[i]),
			"--cache-url", rs.URL(), "--cache-timeout", cacheTimeout,
			"--drain-delay", drainDelay, "--trusted-proxies", "127.0.0.1", "--log-format", "json")
		nodeURLs = append(nodeURLs, fmt.Sprintf("http://127.0.0.1:%d", nodePorts[i]))
		admins = append(admins, fmt.Sprintf("http://127.0.0.1:%d", adminPorts[i]))
	}
	for _, u := range nodeURLs {
		waitHTTP(t, u+"/readyz", 30*time.Second)
	}

	stats := startHAProxy(t, &procs, dir, haproxy, lbPort, statsPort, nodePorts)

	l := newLoad(fmt.Sprintf("http://127.0.0.1:%d", lbPort))
	l.nodes = nodeURLs
	l.setup(t) // workers (6) users, one article each
	rl := &redisLoad{load: l, bodies: map[string]string{}, bodyAcks: map[string]int{}}
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range writers5 {
		wg.Add(1)
		go func() { defer wg.Done(); rl.writer(ctx, w) }()
	}
	for r := range readers5 {
		wg.Add(1)
		go func() { defer wg.Done(); rl.reader(ctx, r) }()
	}
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("[%5.1fs] %s", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	phase := func(name string) {
		rl.phase.Store(name)
		logf("%s", name)
	}

	phase("warm")
	time.Sleep(killAt5)
	phase("killed")
	rs.Kill()
	time.Sleep(down5)
	phase("restarted empty")
	rs.Start()
	time.Sleep(pauseAt5)
	phase("paused")
	rs.Pause()
	time.Sleep(paused5)
	phase("resumed")
	rs.Resume()
	resumed := time.Now()
	hitsAtResume := cacheHits(admins)
	time.Sleep(settle5)
	stopLoad()
	wg.Wait()
	elapsed := time.Since(began)

	// The nodes must have gone back to the cache after the pause: the
	// breaker closed on every node, and reads served by the cache again.
	var open []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		open = open[:0]
		for i, a := range admins {
			if v, ok := metricValue(a, "conduit_cache_circuit_open"); !ok || v != 0 {
				open = append(open, fmt.Sprintf("node%d", i+1))
			}
		}
		if len(open) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	hitsAfter := cacheHits(admins) - hitsAtResume

	var lbStats []string
	for _, f := range []string{"wretr", "wredis", "econ", "eresp", "hrsp_5xx"} {
		v, _ := statsField(stats, "BACKEND", f)
		lbStats = append(lbStats, f+"="+v)
	}
	// The faults must have bitten: calls failed and reads bypassed the cache.
	redisErrors := metricSum(admins, "conduit_cache_redis_errors_total{")
	bypassed := metricSum(admins, "conduit_cache_bypassed_total{")
	var bumps []string
	for _, a := range admins {
		v, _ := metricValue(a, "conduit_cache_generation_bumps_total")
		bumps = append(bumps, strconv.Itoa(int(v)))
	}
	present, dup := l.verify(t, dbURL) // comments, articles, bios
	bodies, bodiesOK := rl.verifyBodies(t, dbURL)
	present += bodies
	r := &l.stats
	summary := fmt.Sprintf(`Redis fault drill: %.1f s of load through HAProxy on 3 nodes sharing one Redis (--cache-timeout %s)
  Redis SIGKILLed at %.1f s, restarted empty at %.1f s, paused (SIGSTOP) at %.1f s for %.1f s, then SIGCONT
  requests sent:        %d (reads %d, write attempts %d incl. %d client retries)
  failed reads:         %d
  stale reads:          %d (of %d read-backs of an acknowledged write: through the balancer and on each node)
  stale by phase:       %s
  writes acknowledged:  %d of %d (failed writes: %d); acknowledged present: %d; article bodies as last acknowledged: %v
  applied twice:        %d
  cache hits after SIGCONT (%.1f s, all nodes, near + Redis): %d; breaker still open at the end on: %v
  failed Redis calls:   %d; reads sent straight to the database (breaker open): %d; new cache generations per node: %s
  responses: 409 in-flight %d, 503 %d, 502/504 %d
  HAProxy backend: %s (retries, redispatches, connection errors, response errors, 5xx)`,
		elapsed.Seconds(), cacheTimeout, killAt5.Seconds(), (killAt5 + down5).Seconds(), (killAt5 + down5 + pauseAt5).Seconds(), paused5.Seconds(),
		r.reads.Load()+r.writeAttempts.Load(), r.reads.Load(), r.writeAttempts.Load(), r.retries.Load(),
		r.failedReads.Load(), r.staleReads.Load(), rl.readBacks.Load(), rl.stalePhases(),
		r.acked.Load(), r.writes.Load(), r.failedWrites.Load(), present, bodiesOK, dup,
		time.Since(resumed).Seconds(), hitsAfter, open, redisErrors, bypassed, strings.Join(bumps, ", "),
		r.conflicts.Load(), r.unavailable.Load(), r.gateway.Load(), strings.Join(lbStats, " "))
	l.report(t, summary, "CONDUIT_DRILL5_REPORT", present, dup)
	if !bodiesOK {
		t.Errorf("an article's body in the database is not its last acknowledged one")
	}
	if len(open) > 0 {
		t.Errorf("the cache breaker is still open on %v 10 s after Redis came back", open)
	}
	if hitsAfter == 0 {
		t.Errorf("no cache hit after Redis came back: the nodes did not return to the cache")
	}
	if redisErrors == 0 || bypassed == 0 {
		t.Errorf("the faults did not reach the nodes (%d failed Redis calls, %d bypassed reads)", redisErrors, bypassed)
	}
	if rl.readBacks.Load() == 0 {
		t.Errorf("no acknowledged write was read back")
	}
}

// redisLoad drives the drill: writers change their own user's bio and
// article body and read each acknowledged change back; readers read what
// the cache serves (articles, profiles, tags, the first list pages).
type redisLoad struct {
	*load
	phase     atomic.Value // string: the fault phase, for stale reads
	readBacks atomic.Int64

	mu          sync.Mutex
	bodies      map[string]string // slug -> last acknowledged body
	bodyAcks    map[string]int    // slug -> acknowledged body updates
	staleByName map[string]int
}

func (rl *redisLoad) writer(ctx context.Context, w int) {
	me := rl.users[w]
	for n := 0; ctx.Err() == nil; n++ {
		if n%2 == 0 {
			bio := fmt.Sprintf("bio-w%d-%d", w, n)
			if rl.write("PUT", "/api/user", me.token, "u-"+bio, fmt.Sprintf(`{"user":{"bio":%q}}`, bio), nil) {
				rl.load.mu.Lock()
				rl.ackedBio[w] = append(rl.ackedBio[w], n)
				rl.load.mu.Unlock()
				rl.readBack("/api/profiles/"+me.name, `"bio":"`+bio+`"`)
			}
		} else {
			body := fmt.Sprintf("body-w%d-%d", w, n)
			if rl.write("PUT", "/api/articles/"+me.slug, me.token, "a-"+body, fmt.Sprintf(`{"article":{"body":%q}}`, body), nil) {
				rl.mu.Lock()
				rl.bodies[me.slug] = body
				rl.bodyAcks[me.slug]++
				rl.mu.Unlock()
				rl.readBack("/api/articles/"+me.slug, `"body":"`+body+`"`)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause5):
		}
	}
}

// readBack reads path anonymously (the cached, viewer-independent
// answer) through the balancer, then on every node; each answer must
// contain want, the write just acknowledged.
func (rl *redisLoad) readBack(path, want string) {
	for _, base := range append([]string{rl.base}, rl.nodes...) {
		rl.stats.reads.Add(1)
		rl.readBacks.Add(1)
		st, b, _, err := rl.doAt(base, "GET", path, "", "", "")
		switch {
		case err != nil || st != http.StatusOK:
			rl.stats.failedReads.Add(1)
			rl.fail("read-back %s on %s: status %d err %v body %.200s", path, base, st, err, b)
		case !bytes.Contains(b, []byte(want)):
			rl.stats.staleReads.Add(1)
			phase, _ := rl.phase.Load().(string)
			rl.mu.Lock()
			if rl.staleByName == nil {
				rl.staleByName = map[string]int{}
			}
			rl.staleByName[phase]++
			rl.mu.Unlock()
			rl.fail("stale read-back on %s during %q: %s lacks %s: %.300s", base, phase, path, want, b)
		}
	}
}

func (rl *redisLoad) stalePhases() string {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if len(rl.staleByName) == 0 {
		return "none"
	}
	var parts []string
	for p, n := range rl.staleByName {
		parts = append(parts, fmt.Sprintf("%s %d", p, n))
	}
	return strings.Join(parts, ", ")
}

func (rl *redisLoad) reader(ctx context.Context, r int) {
	for n := 0; ctx.Err() == nil; n++ {
		u := rl.users[(r+n)%len(rl.users)]
		switch n % 5 {
		case 0:
			rl.read("/api/articles/"+u.slug, "")
		case 1:
			rl.read("/api/profiles/"+u.name, "")
		case 2:
			rl.read("/api/articles?limit=10", "")
		case 3:
			rl.read("/api/tags", "")
		case 4:
			rl.read("/api/articles/"+u.slug, u.token)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause5):
		}
	}
}

// verifyBodies checks that every article's body in the database is the
// last one acknowledged for it, and returns the acknowledged body updates
// that are so present (an overwritten one counts when the last is there).
func (rl *redisLoad) verifyBodies(t *testing.T, dbURL string) (present int, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	defer conn.Close(ctx)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	ok = true
	for slug, want := range rl.bodies {
		var got string
		if err := conn.QueryRow(ctx, `SELECT body FROM articles WHERE slug = $1`, slug).Scan(&got); err != nil || got != want {
			rl.fail("article %s: body %q in the database, last acknowledged %q (%v)", slug, got, want, err)
			ok = false
			continue
		}
		present += rl.bodyAcks[slug]
	}
	return present, ok
}

// cacheHits sums the cache hits (near and Redis tiers) of the nodes.
func cacheHits(admins []string) int64 {
	var total int64
	for _, a := range admins {
		v, _ := metricValue(a, `conduit_cache_hits_total{cache="redis"}`)
		total += int64(v)
	}
	return total
}

// metricSum sums the samples whose line starts with prefix (a metric
// name and "{") over the nodes' admin /metrics.
func metricSum(admins []string, prefix string) int64 {
	var total float64
	for _, a := range admins {
		resp, err := http.Get(a + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, prefix) {
				if i := strings.LastIndexByte(line, ' '); i > 0 {
					v, _ := strconv.ParseFloat(line[i+1:], 64)
					total += v
				}
			}
		}
		resp.Body.Close()
	}
	return int64(total)
}

// metricValue reads one sample (name with its labels, as exposed) from a
// node's admin /metrics.
func metricValue(admin, sample string) (float64, bool) {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && name == sample {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}
