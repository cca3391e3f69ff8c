package cache_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/apitest"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// node is one Conduit web node as cmd/conduit wires it on PostgreSQL.
type node struct {
	srv      *httptest.Server
	coherent *cache.Coherent
	mem      *cache.Memory
}

func startNode(t *testing.T, url string, tokens *auth.Tokens) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	mem := cache.NewMemory(1000).WithHold(hold)
	c := cache.NewCoherent(mem, cache.CoherentOptions{
		Publish:    func(ctx context.Context, p string) error { return db.Notify(ctx, "conduit_cache", p) },
		MaxPayload: store.MaxNotifyPayload,
		Logger:     logger,
	})
	done := make(chan struct{})
	go func() { db.Listen(ctx, "conduit_cache", c, logger); close(done) }()
	srv := httptest.NewServer(api.New(conduit.NewService(db, c, auth.Bcrypt{Cost: 4}), tokens))
	t.Cleanup(func() { srv.Close(); cancel(); <-done; db.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for c.Connects() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("listener did not connect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &node{srv: srv, coherent: c, mem: mem}
}

func call(t *testing.T, n *node, method, path, token, body string) (int, string) {
	t.Helper()
	return apitest.Call(t, n.srv.URL, method, path, token, body)
}

func testTokens(t *testing.T) *auth.Tokens {
	keys, err := auth.ParseKeys("k1:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(keys, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// startPeers starts two nodes on a new database and waits until each
// knows of the other (so that every invalidation waits for the other's
// acknowledgement).
func startPeers(t *testing.T) (a, b *node) {
	t.Helper()
	url := storetest.NewMigratedPostgresDatabase(t)
	tokens := testTokens(t)
	a, b = startNode(t, url, tokens), startNode(t, url, tokens)
	awaitPeers(t, a, b)
	return a, b
}

// awaitPeers waits until each node is settled and holds the other's
// lease (its cache is used, and a write on one waits for the other).
func awaitPeers(t *testing.T, a, b *node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a.coherent.Peers() != 1 || b.coherent.Peers() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the nodes did not learn of each other")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hold is the tombstone time of the test caches: short, so that B caches
// again soon after each write.
const hold = 50 * time.Millisecond

// cacheOnB reads path on b until it is served from b's cache.
func cacheOnB(t *testing.T, b *node, path string) {
	t.Helper()
	time.Sleep(hold + 10*time.Millisecond)
	call(t, b, "GET", path, "", "")
	h0, _ := b.mem.Stats()
	call(t, b, "GET", path, "", "")
	if h1, _ := b.mem.Stats(); h1 == h0 {
		t.Fatalf("%s was not served from B's cache: the test would prove nothing", path)
	}
}

// A write through node A is visible on node B's very next read, although
// B had the old value cached: A's Delete returns only after B acknowledged
// the invalidation through PostgreSQL.
func TestReadAfterWriteAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b := startPeers(t)

	readAfterWriteRounds(t, a, b, func(path string) { cacheOnB(t, b, path) }, hold+10*time.Millisecond)
}

// readAfterWriteRounds is the read-after-write check shared by the stage-3
// and stage-5 tests: in each of 20 rounds B caches the article and the
// profile (cacheOnB proves it), A writes, and B's very next read must be
// new; then the same for an anonymous first page, read twice on B after
// listPause.
func readAfterWriteRounds(t *testing.T, a, b *node, cacheOnB func(path string), listPause time.Duration) {
	t.Helper()
	st, body := call(t, a, "POST", "/api/users", "", `{"user":{"username":"dana","email":"dana@example.com","password":"password1"}}`)
	var u struct{ User struct{ Token string } }
	if st != 201 || json.Unmarshal([]byte(body), &u) != nil {
		t.Fatalf("register: %d %s", st, body)
	}
	st, body = call(t, a, "POST", "/api/articles", u.User.Token, `{"article":{"title":"Coherence","description":"d","body":"v0","tagList":["t0"]}}`)
	var art struct{ Article struct{ Slug string } }
	if st != 201 || json.Unmarshal([]byte(body), &art) != nil {
		t.Fatalf("create: %d %s", st, body)
	}
	slug := art.Article.Slug

	rounds := 20
	if testing.Short() {
		rounds = 3 // each round waits out the tombstones a few times
	}
	for i := 1; i <= rounds; i++ {
		v := "v" + strconv.Itoa(i)
		// B caches the article and the author's profile.
		cacheOnB("/api/articles/" + slug)
		cacheOnB("/api/profiles/dana")

		if st, body := call(t, a, "PUT", "/api/articles/"+slug, u.User.Token, `{"article":{"body":"`+v+`"}}`); st != 200 {
			t.Fatalf("update via A: %d %s", st, body)
		}
		if _, body := call(t, b, "GET", "/api/articles/"+slug, "", ""); !strings.Contains(body, `"body":"`+v+`"`) {
			t.Fatalf("round %d: B served a stale article right after A's write: %s", i, body)
		}
		if st, body := call(t, a, "PUT", "/api/user", u.User.Token, `{"user":{"bio":"`+v+`"}}`); st != 200 {
			t.Fatalf("update user via A: %d %s", st, body)
		}
		if _, body := call(t, b, "GET", "/api/profiles/dana", "", ""); !strings.Contains(body, `"bio":"`+v+`"`) {
			t.Fatalf("round %d: B served a stale profile right after A's write: %s", i, body)
		}

		// B keeps anonymous first pages of lists; a favorite via A changes
		// the count they show.
		list := "/api/articles?tag=t0"
		time.Sleep(listPause)
		call(t, b, "GET", list, "", "")
		call(t, b, "GET", list, "", "")
		method, want := "POST", `"favoritesCount":1`
		if i%2 == 0 {
			method, want = "DELETE", `"favoritesCount":0`
		}
		if st, body := call(t, a, method, "/api/articles/"+slug+"/favorite", u.User.Token, ""); st != 200 {
			t.Fatalf("favorite via A: %d %s", st, body)
		}
		if _, body := call(t, b, "GET", list, "", ""); !strings.Contains(body, want) {
			t.Fatalf("round %d: B served a stale list right after A's write (want %s): %s", i, want, body)
		}
		// The count is cached apart from the article (a favorite does not
		// invalidate the article): B's article shows it too.
		if _, body := call(t, b, "GET", "/api/articles/"+slug, "", ""); !strings.Contains(body, want) {
			t.Fatalf("round %d: B served a stale favorites count right after A's write (want %s): %s", i, want, body)
		}
	}
}

// When B's listening session breaks, notifications sent meanwhile are
// lost; B must not serve what it cached before.
func TestListenerReconnectClearsCache(t *testing.T) {
	t.Parallel()
	url := storetest.NewMigratedPostgresDatabase(t)
	tokens := testTokens(t)
	a, b := startNode(t, url, tokens), startNode(t, url, tokens)
	awaitPeers(t, a, b)
	st, body := call(t, a, "POST", "/api/users", "", `{"user":{"username":"erin","email":"erin@example.com","password":"password1"}}`)
	if st != 201 {
		t.Fatalf("register: %d %s", st, body)
	}
	cacheOnB(t, b, "/api/profiles/erin")

	// Cut every listener session of this database, then change the row
	// behind the caches' back (no notification at all).
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	before := b.coherent.Connects()
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'conduit-listener' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`UPDATE users SET bio = 'changed behind the cache' WHERE username = 'erin'`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for b.coherent.Connects() == before {
		if time.Now().After(deadline) {
			t.Fatal("B's listener did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, body := call(t, b, "GET", "/api/profiles/erin", "", ""); !strings.Contains(body, "changed behind the cache") {
		t.Fatalf("after reconnecting, B served its old cached profile: %s", body)
	}
}
