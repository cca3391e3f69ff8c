package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/apitest"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// replicaDelay makes the replica reliably late: it applies each commit
// this long after the primary made it.
const replicaDelay = 2 * time.Second

// rywNode is one Conduit node wired as cmd/conduit wires it with replicas:
// the primary, the late replica, the cache bus (or the Redis cache and the
// positions kept in it) and the API.
type rywNode struct {
	srv   *httptest.Server
	db    *store.DB
	bus   *cache.Coherent
	redis *cache.Redis
}

// startRYWNode starts a node; with rs the cache and the read-your-writes
// positions are in that Redis (stage 5), else on the LISTEN/NOTIFY bus.
func startRYWNode(t *testing.T, primary, replica string, maxLag time.Duration, tokens *auth.Tokens, rs *redistest.Server) *rywNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.OpenPostgres(ctx, primary, store.PostgresOptions{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := &rywNode{db: db}
	opts := store.ReplicaOptions{
		URLs: []string{replica}, MaxLag: maxLag, CheckInterval: 50 * time.Millisecond,
		UserOf: auth.UserID, Pool: store.PostgresOptions{MaxConns: 8}, Logger: logger,
	}
	var svcCache conduit.Cache
	done := make(chan struct{})
	if rs != nil {
		// Redis's default timeouts, as a node runs with: the fault drills
		// below need the breaker to open.
		n.redis = rs.Cache(t, cache.RedisOptions{Timeout: 50 * time.Millisecond, Logger: logger})
		svcCache, opts.Positions = n.redis, cache.NewPositions(n.redis, time.Minute)
		close(done)
	} else {
		n.bus = cache.NewCoherent(cache.NewMemory(1000), cache.CoherentOptions{
			Publish:    func(ctx context.Context, p string) error { return db.Notify(ctx, "conduit_cache", p) },
			MaxPayload: store.MaxNotifyPayload,
			Logger:     logger,
		})
		go func() { db.Listen(ctx, "conduit_cache", n.bus, logger); close(done) }()
		svcCache, opts.Bus = n.bus, n.bus
	}
	if err := db.AttachReplicas(ctx, opts); err != nil {
		t.Fatal(err)
	}
	n.srv = httptest.NewServer(api.New(conduit.NewService(db, svcCache, auth.Bcrypt{Cost: 4}), tokens))
	t.Cleanup(func() { n.srv.Close(); cancel(); <-done; db.Close() })
	// A replica later than the cut-off may never get a known lag: the
	// listeners' beats (store.Listen) commit on the primary several times
	// a second, so the replica never catches up with a position sampled
	// within the cut-off. Then its being up is enough.
	beyond := maxLag < replicaDelay
	deadline := time.Now().Add(15 * time.Second)
	for !n.cacheUp() || !n.replicaUp(beyond) {
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: cache up %v, replica stats %+v", n.cacheUp(), db.ReadStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

func (n *rywNode) cacheUp() bool {
	if n.redis != nil {
		return n.redis.Usable()
	}
	return n.bus.Connects() > 0
}

// replicaUp reports whether the replica is up with a known lag (or, with
// anyLag, up at all).
func (n *rywNode) replicaUp(anyLag bool) bool {
	st := n.db.ReadStats()
	return st != nil && len(st.Replicas) == 1 && st.Replicas[0].Up && (anyLag || st.Replicas[0].Lag >= 0)
}

func (n *rywNode) replicaReads() uint64 { return n.db.ReadStats().Replicas[0].Reads }

func (n *rywNode) do(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	return apitest.Call(t, n.srv.URL, method, path, token, body)
}

// must runs a request and fails the test unless it answers want.
func (n *rywNode) must(t *testing.T, want int, method, path, token, body string) string {
	t.Helper()
	st, b := n.do(t, method, path, token, body)
	if st != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, st, b, want)
	}
	return b
}

// shows fails the test unless a read right after a write shows it.
func shows(t *testing.T, step, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("%s: the read right after the write, on the other node, does not show %s:\n%s", step, w, body)
		}
	}
}

func register(t *testing.T, n *rywNode, name string) string {
	t.Helper()
	b := n.must(t, 201, "POST", "/api/users", "", fmt.Sprintf(`{"user":{"username":%q,"email":"%s@example.com","password":"password1"}}`, name, name))
	var out struct{ User struct{ Token string } }
	if err := json.Unmarshal([]byte(b), &out); err != nil || out.User.Token == "" {
		t.Fatalf("register %s: %s", name, b)
	}
	return out.User.Token
}

func testKeys(t *testing.T) *auth.Tokens {
	t.Helper()
	tokens, err := auth.NewTokens([]auth.Key{{ID: "k1", Secret: bytes.Repeat([]byte("r"), 32)}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// Read-your-writes with a replica that applies every commit 2 s late: each
// of a user's writes through one node is visible to that user's very next
// read through the other node, while another user's reads are served by
// the late replica (and may lag, within the cut-off). And a replica beyond
// the cut-off gets no reads at all.
func TestReplicaReadYourWrites(t *testing.T) {
	t.Parallel() // nothing shared: its own databases (and servers)
	if testing.Short() {
		t.Skip("starts a PostgreSQL primary and replica")
	}
	// synchronous_commit on: write positions are read after COMMIT
	// (AttachReplicas refuses a primary without it).
	primary := storetest.StartCluster(t, "synchronous_commit=on")
	replica := primary.StartReplica(fmt.Sprintf("recovery_min_apply_delay=%dms", replicaDelay.Milliseconds()))
	tokens := testKeys(t)

	t.Run("own writes on the other node", func(t *testing.T) {
		primary.CreateDatabase("ryw")
		const maxLag = 5 * time.Second
		a := startRYWNode(t, primary.URL("ryw"), replica.URL("ryw"), maxLag, tokens, nil)
		b := startRYWNode(t, primary.URL("ryw"), replica.URL("ryw"), maxLag, tokens, nil)
		ownWritesOnTheOtherNode(t, a, b, maxLag)
	})

	t.Run("replica beyond the cut-off gets no reads", func(t *testing.T) {
		primary.CreateDatabase("cutoff")
		const maxLag = time.Second // the replica is 2 s late under writes
		a := startRYWNode(t, primary.URL("cutoff"), replica.URL("cutoff"), maxLag, tokens, nil)
		b := startRYWNode(t, primary.URL("cutoff"), replica.URL("cutoff"), maxLag, tokens, nil)
		alice := register(t, a, "alice")
		reader := register(t, a, "reader")
		time.Sleep(replicaDelay + time.Second)
		body := a.must(t, 201, "POST", "/api/articles", alice, `{"article":{"title":"Busy","description":"d","body":"b"}}`)
		var art struct{ Article struct{ Slug string } }
		if err := json.Unmarshal([]byte(body), &art); err != nil {
			t.Fatal(err)
		}
		comments := "/api/articles/" + art.Article.Slug + "/comments"

		// Alice comments every 100 ms on A; the reader reads on B. Every
		// comment acknowledged more than the cut-off (plus two checks)
		// before a read started must be in it.
		var mu sync.Mutex
		type ack struct {
			body string
			at   time.Time
		}
		var acked []ack
		ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ctx.Err() == nil; i++ {
				c := fmt.Sprintf("busy-%d", i)
				if st, _ := a.do(t, "POST", comments, alice, `{"comment":{"body":"`+c+`"}}`); st == 200 {
					mu.Lock()
					acked = append(acked, ack{c, time.Now()})
					mu.Unlock()
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		reads := 0
		for ctx.Err() == nil {
			start := time.Now()
			mu.Lock()
			var due []string
			for _, x := range acked {
				if start.Sub(x.at) > maxLag+100*time.Millisecond {
					due = append(due, x.body)
				}
			}
			mu.Unlock()
			got := b.must(t, 200, "GET", comments, reader, "")
			for _, c := range due {
				if !strings.Contains(got, `"body":"`+c+`"`) {
					t.Fatalf("a read lagged beyond the %v cut-off: comment %s, acknowledged long before, is missing", maxLag, c)
				}
			}
			reads++
			time.Sleep(50 * time.Millisecond)
		}
		<-done
		st := b.db.ReadStats()
		if st.Replicas[0].Lag <= maxLag && st.Replicas[0].Lag >= 0 {
			t.Logf("note: replica lag at the end %v", st.Replicas[0].Lag)
		}
		if st.Primary["lag"] == 0 {
			t.Fatalf("no read was sent to the primary for lag although the replica is %v late (stats %+v)", replicaDelay, st)
		}
		t.Logf("%d reads by another user; replica reads on B %d, primary reads for lag %d", reads, st.Replicas[0].Reads, st.Primary["lag"])
	})
}

// ownWritesOnTheOtherNode: each of alice's writes through one node is
// visible to her very next read through the other node, while another
// user's reads are served by the late replica within the cut-off.
func ownWritesOnTheOtherNode(t *testing.T, a, b *rywNode, maxLag time.Duration) {
	// Another user, registered first and then given time to reach the
	// replica: their reads go to it.
	carol := register(t, a, "carol")
	bob := register(t, b, "bob")
	time.Sleep(replicaDelay + time.Second)

	// Register on A; sign in and read oneself on B.
	alice := register(t, a, "alice")
	b.must(t, 200, "POST", "/api/users/login", "", `{"user":{"email":"alice@example.com","password":"password1"}}`)
	shows(t, "register", b.must(t, 200, "GET", "/api/user", alice, ""), `"username":"alice"`)

	// Write an article on B; read it on A.
	body := b.must(t, 201, "POST", "/api/articles", alice, `{"article":{"title":"Late replicas","description":"d","body":"b","tagList":["ryw"]}}`)
	var art struct{ Article struct{ Slug string } }
	if err := json.Unmarshal([]byte(body), &art); err != nil {
		t.Fatal(err)
	}
	slug := art.Article.Slug
	shows(t, "article", a.must(t, 200, "GET", "/api/articles/"+slug, alice, ""), `"title":"Late replicas"`)
	shows(t, "article in my list", a.must(t, 200, "GET", "/api/articles?author=alice", alice, ""), `"slug":"`+slug+`"`)

	// Update the bio on A; read it on B.
	a.must(t, 200, "PUT", "/api/user", alice, `{"user":{"bio":"replicated bio"}}`)
	shows(t, "bio", b.must(t, 200, "GET", "/api/user", alice, ""), `"bio":"replicated bio"`)
	shows(t, "bio in my profile", b.must(t, 200, "GET", "/api/profiles/alice", alice, ""), `"bio":"replicated bio"`)

	// Comment on B; read on A.
	b.must(t, 200, "POST", "/api/articles/"+slug+"/comments", alice, `{"comment":{"body":"first comment"}}`)
	shows(t, "comment", a.must(t, 200, "GET", "/api/articles/"+slug+"/comments", alice, ""), `"body":"first comment"`)

	// Favorite on A; read on B.
	a.must(t, 200, "POST", "/api/articles/"+slug+"/favorite", alice, "")
	shows(t, "favorite", b.must(t, 200, "GET", "/api/articles/"+slug, alice, ""), `"favorited":true`, `"favoritesCount":1`)
	shows(t, "favorites list", b.must(t, 200, "GET", "/api/articles?favorited=alice", alice, ""), `"slug":"`+slug+`"`)

	// Follow on B; read on A.
	b.must(t, 200, "POST", "/api/profiles/bob/follow", alice, "")
	shows(t, "follow", a.must(t, 200, "GET", "/api/profiles/bob", alice, ""), `"following":true`)
	_ = bob

	// Another user's reads go to the late replica: right after a write
	// they may not show it, but within the cut-off they do.
	before := a.replicaReads() + b.replicaReads()
	a.must(t, 201, "POST", "/api/articles", alice, `{"article":{"title":"Second thoughts","description":"d","body":"b"}}`)
	wrote := time.Now()
	shows(t, "second article, own list", b.must(t, 200, "GET", "/api/articles?author=alice", alice, ""), `"title":"Second thoughts"`)
	// (Whether carol's first read lags depends on whether the replica
	// is within the cut-off at that moment: both answers are right.)
	for !strings.Contains(b.must(t, 200, "GET", "/api/articles?author=alice", carol, ""), "Second thoughts") {
		if time.Since(wrote) > maxLag+3*time.Second {
			t.Fatalf("carol still does not see alice's article %v after it was written (cut-off %v)", time.Since(wrote), maxLag)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after := a.replicaReads() + b.replicaReads(); after <= before {
		t.Fatalf("the replica served no reads (%d before, %d after): the test proves nothing", before, after)
	}
	t.Logf("carol saw alice's article after %v (replica delay %v); replica reads: A %d, B %d",
		time.Since(wrote).Round(10*time.Millisecond), replicaDelay, a.replicaReads(), b.replicaReads())
}
