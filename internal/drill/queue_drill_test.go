//go:build linux

package drill

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/queue"
	"github.com/conduit-dev/conduit/internal/queue/natstest"
	"github.com/conduit-dev/conduit/internal/store"
)

// loadFor is how long the queue drill's load runs; its faults happen
// within it.
const loadFor = 20 * time.Second

// The stage 7 drill: a web node and two `conduit worker` processes on
// PostgreSQL with NATS JetStream, under a load of writes that cause jobs
// (publishes, follows, unfollows, favorites, comments, deletes), while
// faults are injected one after the other. Afterwards the queue must
// drain, nothing may be dead or stuck, and the effects must be exactly
// what the tables say: every timeline equal to the feed read from the
// follows, every notification counting each actor once, every follow,
// favorite and comment by someone else told once.
//
// The faults are a list of steps: NATS SIGKILLed and restarted, a worker
// SIGKILLed mid-job and restarted, and a PostgreSQL failover (the primary
// SIGKILLed, its synchronous standby promoted; every process reconnects
// through a multi-host URL to whichever server takes writes).

func TestQueueDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("the queue drill takes about a minute")
	}
	if os.Getenv("CI") != "true" && os.Getenv("CONDUIT_QUEUE_DRILL") == "" {
		t.Skip("the queue drill runs with CI=true or CONDUIT_QUEUE_DRILL=1 (needs nats-server and PostgreSQL)")
	}
	t.Parallel() // see doc.go
	nats := natstest.Start(t)
	dir := t.TempDir()
	var procs procSet
	t.Cleanup(procs.stopAll)
	ports := freePorts(t, 5)
	setupStart := time.Now()
	pg := startPGPair(t, &procs, dir, [2]int{ports[3], ports[4]})
	dbURL := pg.URL
	t.Logf("PostgreSQL primary and synchronous standby up in %v", time.Since(setupStart).Round(100*time.Millisecond))
	bin := conduitBin.Path(t)
	t.Logf("built conduit; set up in %v", time.Since(setupStart).Round(100*time.Millisecond))
	var key [32]byte
	rand.Read(key[:])
	env := append(os.Environ(), "CONDUIT_DATABASE_URL="+dbURL, "CONDUIT_JWT_KEYS=k1:"+base64.StdEncoding.EncodeToString(key[:]),
		"CONDUIT_QUEUE_URL="+nats.URL, "CONDUIT_JOB_LEASE=3s", "CONDUIT_FANOUT_MAX_FOLLOWERS=10", "CONDUIT_TIMELINE_CAP=15",
		"CONDUIT_LOG_FORMAT=json", "CONDUIT_BCRYPT_COST=4", "CONDUIT_SIGNUP_MAX_PER_ADDR=0", "CONDUIT_MAX_INFLIGHT=0")
	if out, err := cmdWithEnv(env, bin, "migrate").CombinedOutput(); err != nil {
		t.Fatalf("conduit migrate: %v\n%s", err, out)
	}
	web := fmt.Sprintf("127.0.0.1:%d", ports[0])
	procs.start(t, "web", filepath.Join(dir, "web.log"), nil, env, bin, "serve", "--addr", web, "--workers", "0")
	workers := make([]*proc, 2)
	startWorker := func(i int) {
		workers[i] = procs.start(t, fmt.Sprintf("worker%d", i+1), filepath.Join(dir, fmt.Sprintf("worker%d.log", i+1)), nil, env,
			bin, "worker", "--workers", "2", "--admin-addr", fmt.Sprintf("127.0.0.1:%d", ports[1+i]))
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1+i]), 30*time.Second)
	}
	waitHTTP(t, "http://"+web+"/readyz", 30*time.Second)
	startWorker(0)
	startWorker(1)

	l := &queueLoad{base: "http://" + web, client: &http.Client{Timeout: 10 * time.Second}}
	l.setup(t, 14)
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("[%5.1fs] %s", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); l.run(loadCtx, uint64(w)) }()
	}
	var lostAt, promotedAt time.Time
	steps := []struct {
		at   time.Duration
		name string
		do   func()
	}{
		{3 * time.Second, "SIGKILL nats-server", nats.Kill},
		{6 * time.Second, "restart nats-server (same storage)", func() { nats.Restart(t) }},
		{8 * time.Second, "SIGKILL worker1 (mid-job under load)", func() { workers[0].signal(syscall.SIGKILL); workers[0].wait(10 * time.Second) }},
		{11 * time.Second, "restart worker1", func() { startWorker(0) }},
		{13 * time.Second, "PostgreSQL failover: primary SIGKILLed, standby promoted 1 s later", func() {
			lostAt = time.Now()
			if err := pg.failover(t, time.Second); err != nil {
				t.Errorf("failover: %v", err)
			}
			promotedAt = time.Now()
		}},
	}
	for _, s := range steps {
		time.Sleep(time.Until(began.Add(s.at)))
		logf("%s", s.name)
		s.do()
	}
	time.Sleep(time.Until(began.Add(loadFor)))
	stopLoad()
	wg.Wait()
	loadTook := time.Since(began)
	writeGap := l.longestGap(lostAt, began.Add(loadFor))
	logf("load stopped: %d writes acknowledged, %d failed; no write acknowledged for %.1f s after the primary was lost",
		l.acked.Load(), l.failed.Load(), writeGap.Seconds())

	// The queue drains.
	db, err := store.OpenPostgres(context.Background(), dbURL, store.PostgresOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	nq, err := queue.DialNATS(nats.URL, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nq.Close()
	drainStart := time.Now()
	drained := false
	for time.Since(drainStart) < 90*time.Second {
		stats, err1 := db.JobStats(context.Background())
		waiting, inFlight, err2 := nq.Pending(context.Background())
		pending := 0
		for _, s := range stats {
			pending += s.Pending
		}
		if err1 == nil && err2 == nil && pending == 0 && waiting == 0 && inFlight == 0 {
			drained = true
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	drainTook := time.Since(drainStart)
	logf("queue drained: %v (after %s)", drained, drainTook.Round(time.Millisecond))

	// Effects against a recomputation from the tables.
	v := verifyQueueEffects(t, db, dbURL)
	summary := fmt.Sprintf(`queue drill (stage 7): %.1f s of load on a web node and 2 workers, PostgreSQL (primary + synchronous standby) + NATS JetStream
  faults:               NATS SIGKILLed at 3 s and restarted at 6 s; worker1 SIGKILLed at 8 s, restarted at 11 s;
                        PostgreSQL primary SIGKILLed at %.1f s, standby (synchronous) promoted at %.1f s
  writes acknowledged:  %d (failed: %d); none for %.1f s after the primary was lost
  queue drained:        %v, %s after the load stopped
  outbox / dead:        %d pending, %d dead letters
  timelines:            %d users, %d equal to the feed read from the follows, %d not answering
  notifications:        %d events expected from the tables, %d missing, %d unexpected; %d groups with wrong actor counts`,
		loadTook.Seconds(), lostAt.Sub(began).Seconds(), promotedAt.Sub(began).Seconds(),
		l.acked.Load(), l.failed.Load(), writeGap.Seconds(), drained, drainTook.Round(time.Millisecond),
		v.pending, v.dead, v.users, v.equal, v.unanswered, v.expected, v.missing, v.unexpected, v.badGroups)
	fmt.Println(summary)
	t.Log("\n" + summary)
	if path := os.Getenv("CONDUIT_QUEUE_DRILL_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(summary+"\n"), 0o644); err != nil {
			t.Errorf("write drill report: %v", err)
		}
	}
	for _, f := range v.failures {
		t.Log("  " + f)
	}
	switch {
	case !drained:
		t.Error("the queue did not drain within 90 s")
	case v.pending != 0 || v.dead != 0:
		t.Errorf("%d jobs pending, %d dead after draining", v.pending, v.dead)
	}
	if v.equal != v.users || v.unanswered != 0 {
		t.Errorf("%d of %d timelines differ from the feed read from the follows (%d do not answer)", v.users-v.equal, v.users, v.unanswered)
	}
	if v.missing != 0 || v.unexpected != 0 || v.badGroups != 0 {
		t.Errorf("notifications: %d missing, %d unexpected, %d groups miscounted", v.missing, v.unexpected, v.badGroups)
	}
	if lostAt.IsZero() || promotedAt.Sub(lostAt) > 30*time.Second {
		t.Error("the failover did not happen in time")
	}
	if writeGap >= began.Add(loadFor).Sub(lostAt) {
		t.Error("no write was acknowledged after the failover: the nodes did not reconnect to the new primary")
	}
	if l.acked.Load() < 50 {
		t.Errorf("only %d writes acknowledged: the load did nothing useful", l.acked.Load())
	}
}

type queueEffects struct {
	pending, dead                 int
	users, equal, unanswered      int
	expected, missing, unexpected int
	badGroups                     int
	failures                      []string
}

func verifyQueueEffects(t *testing.T, db *store.DB, dbURL string) queueEffects {
	ctx := context.Background()
	var v queueEffects
	stats, err := db.JobStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		v.pending += s.Pending
		v.dead += s.Dead
	}
	pg, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	ids := queryStrings(t, pg, `SELECT id::text FROM users ORDER BY id`)
	for _, s := range ids {
		var id int64
		fmt.Sscan(s, &id)
		v.users++
		// The first page (within the cap) comes from the timeline; a
		// deeper one may fall back to the follows, through Feed.
		f := conduit.ArticleFilter{Limit: 10}
		want, err := db.FeedOnRead(ctx, id, f)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := db.TimelineFeed(ctx, id, f)
		if err != nil {
			t.Fatal(err)
		}
		deep := conduit.ArticleFilter{Limit: 50, Offset: 5}
		wantDeep, err1 := db.FeedOnRead(ctx, id, deep)
		gotDeep, err2 := db.Feed(ctx, id, deep)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !sameIDs(gotDeep, wantDeep) || gotDeep.Count != wantDeep.Count {
			ok = true
			got.Count = -1 // counted as differing below
		}
		switch {
		case !ok:
			v.unanswered++
			v.failures = append(v.failures, fmt.Sprintf("user %d: timeline does not answer", id))
		case got.Count == want.Count && sameIDs(got, want):
			v.equal++
		default:
			v.failures = append(v.failures, fmt.Sprintf("user %d: timeline %d articles (count %d), on read %d (count %d)",
				id, len(got.Articles), got.Count, len(want.Articles), want.Count))
		}
	}
	// What the tables say users must have been told (follows that exist,
	// favorites and comments by others on existing articles), against the
	// events recorded. An undone follow may have been told (its job ran
	// before the unfollow): such events are not counted as unexpected.
	expected := queryStrings(t, pg, `
		SELECT followee_id || ' notify.follow:' || followee_id || ':' || follower_id FROM follows
		UNION ALL
		SELECT a.author_id || ' notify.favorite:' || f.article_id || ':' || f.user_id
		FROM favorites f JOIN articles a ON a.id = f.article_id WHERE f.user_id <> a.author_id
		UNION ALL
		SELECT a.author_id || ' notify.comment:' || c.id
		FROM comments c JOIN articles a ON a.id = c.article_id WHERE c.author_id <> a.author_id`)
	got := map[string]bool{}
	for _, e := range queryStrings(t, pg, `SELECT user_id || ' ' || key FROM notification_events`) {
		got[e] = true
	}
	want := map[string]bool{}
	for _, e := range expected {
		want[e] = true
		v.expected++
		if !got[e] {
			v.missing++
			if v.missing <= 10 {
				v.failures = append(v.failures, "not told: "+e)
			}
		}
	}
	for e := range got {
		if !want[e] && !strings.Contains(e, " notify.follow:") {
			v.unexpected++
			v.failures = append(v.failures, "told without cause: "+e)
		}
	}
	bad := queryStrings(t, pg, `
		SELECT n.id::text FROM notifications n
		WHERE n.actors <> (SELECT count(DISTINCT e.actor_id) FROM notification_events e WHERE e.notification_id = n.id)`)
	v.badGroups = len(bad)
	return v
}

// queryStrings runs a query of one text column.
func queryStrings(t *testing.T, c *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameIDs(a, b conduit.ArticlePage) bool {
	if len(a.Articles) != len(b.Articles) {
		return false
	}
	for i := range a.Articles {
		if a.Articles[i].ID != b.Articles[i].ID {
			return false
		}
	}
	return true
}

// ---- load ----

type queueLoad struct {
	base          string
	client        *http.Client
	users         []account
	mu            sync.Mutex
	slugs         []string // articles acknowledged (some deleted later)
	acked, failed atomic.Int64
	ackedAt       []time.Time // under mu
}

// longestGap is the longest time within [from, to] with no write
// acknowledged, counting from the last acknowledgement before from.
func (l *queueLoad) longestGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	acks := slices.Clone(l.ackedAt)
	l.mu.Unlock()
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	prev, longest := from, time.Duration(0)
	for _, a := range acks {
		switch {
		case a.Before(from):
			prev = a
		case a.After(to):
		default:
			longest = max(longest, a.Sub(prev))
			prev = a
		}
	}
	return max(longest, to.Sub(prev))
}

func (l *queueLoad) call(method, path, token, body string) (int, []byte) {
	req, err := http.NewRequest(method, l.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (l *queueLoad) setup(t *testing.T, n int) {
	var suffix [3]byte
	rand.Read(suffix[:])
	for i := range n {
		name := fmt.Sprintf("q%d%x", i, suffix)
		st, b := l.call("POST", "/api/users", "", fmt.Sprintf(`{"user":{"username":%q,"email":"%s@example.com","password":"drill-password"}}`, name, name))
		var out struct{ User struct{ Token string } }
		if st != http.StatusCreated || json.Unmarshal(b, &out) != nil {
			t.Fatalf("register %s: %d %s", name, st, b)
		}
		l.users = append(l.users, account{name: name, token: out.User.Token})
	}
}

// run writes until ctx ends: mostly follows, publishes and favorites, some
// comments, unfollows and deletes.
func (l *queueLoad) run(ctx context.Context, seed uint64) {
	r := mrand.New(mrand.NewPCG(seed, 99))
	for n := 0; ctx.Err() == nil; n++ {
		u := l.users[r.IntN(len(l.users))]
		v := l.users[r.IntN(len(l.users))]
		var st int
		var b []byte
		switch x := r.IntN(100); {
		case x < 25 && u.name != v.name:
			st, b = l.call("POST", "/api/profiles/"+v.name+"/follow", u.token, "")
		case x < 33 && u.name != v.name:
			st, b = l.call("DELETE", "/api/profiles/"+v.name+"/follow", u.token, "")
		case x < 58:
			st, b = l.call("POST", "/api/articles", u.token, fmt.Sprintf(`{"article":{"title":"Drill %d-%d","description":"d","body":"b"}}`, seed, n))
			var out struct{ Article struct{ Slug string } }
			if st == http.StatusCreated && json.Unmarshal(b, &out) == nil {
				l.mu.Lock()
				l.slugs = append(l.slugs, out.Article.Slug)
				l.mu.Unlock()
			}
		case x < 80:
			if s := l.someSlug(r); s != "" {
				st, b = l.call("POST", "/api/articles/"+s+"/favorite", u.token, "")
			}
		case x < 95:
			if s := l.someSlug(r); s != "" {
				st, b = l.call("POST", "/api/articles/"+s+"/comments", u.token, `{"comment":{"body":"drill"}}`)
			}
		default:
			// Delete an article (only its author may: try as each user
			// until one is; a 403 is not a failure).
			if s := l.someSlug(r); s != "" {
				for _, a := range l.users {
					if st, b = l.call("DELETE", "/api/articles/"+s, a.token, ""); st != http.StatusForbidden {
						break
					}
				}
			}
		}
		switch {
		case st == 0 && b == nil:
		case st/100 == 2:
			l.acked.Add(1)
			l.mu.Lock()
			l.ackedAt = append(l.ackedAt, time.Now())
			l.mu.Unlock()
		case st == http.StatusNotFound || st == http.StatusForbidden || st == http.StatusUnprocessableEntity:
			// a deleted article, or following oneself: refused, no write
		default:
			l.failed.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (l *queueLoad) someSlug(r *mrand.Rand) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.slugs) == 0 {
		return ""
	}
	return l.slugs[r.IntN(len(l.slugs))]
}
