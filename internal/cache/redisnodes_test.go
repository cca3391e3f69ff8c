package cache_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// countingStore counts the loads of cached values that reach the database.
type countingStore struct {
	conduit.Store
	articles, users atomic.Int64
}

func (s *countingStore) ArticleBySlug(ctx context.Context, viewerID int64, slug string) (conduit.Article, error) {
	s.articles.Add(1)
	return s.Store.ArticleBySlug(ctx, viewerID, slug)
}

func (s *countingStore) UserByUsername(ctx context.Context, username string) (conduit.User, error) {
	s.users.Add(1)
	return s.Store.UserByUsername(ctx, username)
}

// redisNode is one Conduit node as cmd/conduit wires it with --cache-url:
// its own database pool, its own Redis cache (and near cache), a service
// and the API.
type redisNode struct {
	svc   *conduit.Service
	cache *cache.Redis
	store *countingStore
	srv   *httptest.Server
	dbURL string
}

func startRedisNodes(t *testing.T, n int, rs *redistest.Server, o cache.RedisOptions) []*redisNode {
	t.Helper()
	url := storetest.NewPostgresDatabase(t)
	tokens := testTokens(t)
	var nodes []*redisNode
	for range n {
		db, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := &countingStore{Store: db}
		c := rs.Cache(t, o)
		svc := conduit.NewService(st, c, auth.Bcrypt{Cost: 4})
		srv := httptest.NewServer(api.New(svc, tokens))
		t.Cleanup(srv.Close)
		nodes = append(nodes, &redisNode{svc: svc, cache: c, store: st, srv: srv, dbURL: url})
	}
	// Each node reads the list ledger's sixteen thousand keys to track
	// them, on its one connection; a test that starts meanwhile has its
	// first calls time out behind those reads on a loaded machine.
	for i, n := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for !n.cache.Sync(context.Background()) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d never tracked the list ledger's keys", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nodes
}

// The stage-3 read-after-write test with Redis instead of LISTEN/NOTIFY:
// B serves the article and the profile from its near cache; a write
// through A is visible on B's very next read, and so is a change to an
// anonymous first page (B's list cache follows the invalidation).
func TestRedisReadAfterWriteAcrossNodes(t *testing.T) {
	rs := redistest.Start(t)
	ns := startRedisNodes(t, 2, rs, cache.RedisOptions{})
	a, b := &node{srv: ns[0].srv}, &node{srv: ns[1].srv}

	readAfterWriteRounds(t, a, b, func(path string) {
		// A miss fills Redis, the next read brings the value into the
		// near cache, the one after is served from there.
		for range 3 {
			h0 := ns[1].cache.NearHits()
			call(t, b, "GET", path, "", "")
			if ns[1].cache.NearHits() > h0 {
				return
			}
		}
		t.Fatalf("%s was not served from B's near cache: the test would prove nothing", path)
	}, 0)
}

// A favorite and a stored rendering change what every node shows, but
// not the cached article: B keeps serving it from its near cache, with
// A's new count and A's rendering, and neither node loads it again.
func TestRedisFavoriteAndRenderingKeepArticle(t *testing.T) {
	rs := redistest.Start(t)
	// A generous call timeout: what is tested is where values live, not
	// the fallback when Redis is slow (a 10 ms Set that timed out on a
	// loaded machine stored no rendering, and B could not find one), and
	// a long lease: an invalidation slower than the default lease under
	// load starts a new generation, and B would load the article again.
	ns := startRedisNodes(t, 2, rs, cache.RedisOptions{Timeout: time.Second, Lease: time.Minute})
	a, b := ns[0], ns[1]
	ctx := context.Background()
	u, err := a.svc.Register(ctx, conduit.NewUser{Username: "writer", Email: "writer@example.com", Password: "password1"})
	if err != nil {
		t.Fatal(err)
	}
	fan, err := a.svc.Register(ctx, conduit.NewUser{Username: "fan", Email: "fan@example.com", Password: "password1"})
	if err != nil {
		t.Fatal(err)
	}
	art, err := a.svc.CreateArticle(ctx, u.ID, conduit.NewArticle{Title: "Kept", Description: "d", Body: "# kept"})
	if err != nil {
		t.Fatal(err)
	}
	read := func(n *redisNode) conduit.Article {
		t.Helper()
		got, err := n.svc.Article(ctx, 0, art.Slug)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for range 3 { // into Redis, then into both near caches
		read(a)
		read(b)
	}
	loads := func() int64 { return a.store.articles.Load() + b.store.articles.Load() }
	before := loads()

	for i, on := range []bool{true, false, true} {
		var err error
		if on {
			_, err = a.svc.Favorite(ctx, fan.ID, art.Slug)
		} else {
			_, err = a.svc.Unfavorite(ctx, fan.ID, art.Slug)
		}
		if err != nil {
			t.Fatal(err)
		}
		want := 1 - i%2
		if got := read(b); got.FavoritesCount != want {
			t.Fatalf("B after favorite=%v via A: count %d, want %d", on, got.FavoritesCount, want)
		}
	}

	seen := read(b)
	if _, ok := b.svc.ArticleHTML(ctx, seen, 1); ok {
		t.Fatal("B found a rendering before any was stored")
	}
	if err := a.svc.SaveArticleHTML(ctx, read(a), "<h1>kept</h1>", 1); err != nil {
		t.Fatal(err)
	}
	if html, ok := b.svc.ArticleHTML(ctx, read(b), 1); !ok || html != "<h1>kept</h1>" {
		t.Fatalf("B's rendering after A stored one: %q, %v", html, ok)
	}
	if n := loads() - before; n != 0 {
		t.Errorf("favorites and a stored rendering made the nodes load the article %d times, want 0", n)
	}

	// An edit is still seen at once, and the old rendering is not used
	// for the new body.
	body := "# edited"
	if _, err := a.svc.UpdateArticle(ctx, u.ID, art.Slug, conduit.ArticlePatch{Body: &body}); err != nil {
		t.Fatal(err)
	}
	got := read(b)
	if got.Body != body || got.FavoritesCount != 1 {
		t.Fatalf("B after A's edit: body %q count %d", got.Body, got.FavoritesCount)
	}
	if html, ok := b.svc.ArticleHTML(ctx, got, 1); ok {
		t.Fatalf("B used the rendering of the old body for the new one: %q", html)
	}
}

// 200 readers of one hot article that was just invalidated, spread over
// three nodes: the database sees at most one load per node, and with the
// fill lease in Redis usually one in all.
func TestRedisStampede(t *testing.T) {
	rs := redistest.Start(t)
	ns := startRedisNodes(t, 3, rs, cache.RedisOptions{Timeout: 250 * time.Millisecond})
	ctx := context.Background()
	u, err := ns[0].svc.Register(ctx, conduit.NewUser{Username: "hot", Email: "hot@example.com", Password: "password1"})
	if err != nil {
		t.Fatal(err)
	}
	art, err := ns[0].svc.CreateArticle(ctx, u.ID, conduit.NewArticle{Title: "Hot", Description: "d", Body: "v0"})
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 5; round++ {
		for _, n := range ns {
			if _, err := n.svc.Article(ctx, 0, art.Slug); err != nil { // warm every tier
				t.Fatal(err)
			}
		}
		body := fmt.Sprint("v", round)
		if _, err := ns[round%3].svc.UpdateArticle(ctx, u.ID, art.Slug, conduit.ArticlePatch{Body: &body}); err != nil {
			t.Fatal(err)
		}
		var before int64
		for _, n := range ns {
			before += n.store.articles.Load()
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var stale, failed atomic.Int64
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				a, err := ns[i%3].svc.Article(ctx, 0, art.Slug)
				if err != nil {
					failed.Add(1)
				} else if a.Body != body {
					stale.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		var loads int64
		for _, n := range ns {
			loads += n.store.articles.Load()
		}
		loads -= before
		t.Logf("round %d: 200 readers on 3 nodes, %d database loads", round, loads)
		if failed.Load() > 0 || stale.Load() > 0 {
			t.Fatalf("round %d: %d failed, %d stale reads", round, failed.Load(), stale.Load())
		}
		if loads > 3 {
			t.Fatalf("round %d: %d database loads of the hot article, want at most 3", round, loads)
		}
	}
}

// The race of a lost invalidation: Redis is paused (SIGSTOP) longer than
// the near cache's lease while a row changes without any invalidation
// reaching it (here: behind the service's back, the worst case of a
// write whose invalidation failed). When Redis answers again it still
// holds the old value; no node may serve it, neither while paused nor
// after.
func TestRedisPausedServesNothingStale(t *testing.T) {
	rs := redistest.Start(t)
	ns := startRedisNodes(t, 2, rs, cache.RedisOptions{})
	ctx := context.Background()
	u, err := ns[0].svc.Register(ctx, conduit.NewUser{Username: "paula", Email: "paula@example.com", Password: "password1"})
	if err != nil {
		t.Fatal(err)
	}
	bio := func(n *redisNode) string {
		t.Helper()
		p, err := n.svc.Profile(ctx, 0, "paula")
		if err != nil {
			t.Fatal(err)
		}
		return p.Bio
	}
	// Into Redis and the near caches. A read may time out on a loaded
	// machine (10 ms) and leave the value out: read until B answers one
	// from its near cache.
	for deadline := time.Now().Add(10 * time.Second); ns[1].cache.NearHits() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("setup: the profile is not in B's near cache")
		}
		for _, n := range ns {
			bio(n)
		}
	}
	rs.Pause()
	paused := time.Now()
	admin, err := store.OpenPostgres(ctx, ns[0].dbURL, store.PostgresOptions{MaxConns: 1})
	if err != nil {
		rs.Resume()
		t.Fatal(err)
	}
	defer admin.Close()
	user, _ := admin.UserByID(ctx, u.ID)
	user.Bio = "changed while Redis slept"
	if err := admin.UpdateUser(ctx, &user, false); err != nil {
		rs.Resume()
		t.Fatal(err)
	}
	// Within the lease the near cache may still answer (nothing told it
	// of the change: no write went through a node). Past it, nobody may.
	for time.Since(paused) < 700*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
	}
	for i, n := range ns {
		if b := bio(n); b != user.Bio {
			rs.Resume()
			t.Fatalf("node %d served %q with Redis paused past the lease", i, b)
		}
	}
	rs.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for !ns[0].cache.Usable() || !ns[1].cache.Usable() {
		for i, n := range ns {
			if b := bio(n); b != user.Bio {
				t.Fatalf("node %d served %q while Redis came back", i, b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the nodes did not use the cache again after Redis came back")
		}
	}
	for range 20 {
		for i, n := range ns {
			if b := bio(n); b != user.Bio {
				t.Fatalf("node %d served %q after Redis came back", i, b)
			}
		}
	}
	if h, _ := ns[1].cache.Stats(); h == 0 {
		t.Error("no cache hits at all")
	}
}

// Redis killed (SIGKILL) under load, restarted empty, then paused
// (SIGSTOP) for longer than every timeout: three nodes keep answering
// every request, and every acknowledged write is visible on every node at
// once. Afterwards the nodes use the cache again.
func TestRedisFaultsUnderLoad(t *testing.T) {
	rs := redistest.Start(t)
	ns := startRedisNodes(t, 3, rs, cache.RedisOptions{})
	ctx := context.Background()
	type author struct {
		id   int64
		name string
		slug string
	}
	var authors []author
	for i := range 3 {
		name := fmt.Sprint("writer", i)
		u, err := ns[0].svc.Register(ctx, conduit.NewUser{Username: name, Email: name + "@example.com", Password: "password1"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := ns[0].svc.CreateArticle(ctx, u.ID, conduit.NewArticle{Title: name, Description: "d", Body: "0"})
		if err != nil {
			t.Fatal(err)
		}
		authors = append(authors, author{u.ID, name, a.Slug})
	}
	var requests, failed, stale, writes atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	check := func(err error) bool {
		requests.Add(1)
		if err != nil {
			failed.Add(1)
			t.Logf("request failed: %v", err)
			return false
		}
		return true
	}
	for w, au := range authors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; !stop.Load(); i++ {
				v := fmt.Sprint(i)
				_, err := ns[(w+i)%3].svc.UpdateUser(ctx, au.id, conduit.UserPatch{Bio: &v})
				if !check(err) {
					continue
				}
				_, err = ns[(w+i+1)%3].svc.UpdateArticle(ctx, au.id, au.slug, conduit.ArticlePatch{Body: &v})
				if !check(err) {
					continue
				}
				writes.Add(2)
				for _, n := range ns {
					if p, err := n.svc.Profile(ctx, 0, au.name); check(err) && p.Bio != v {
						stale.Add(1)
						t.Errorf("stale profile: bio %q, acknowledged %q", p.Bio, v)
					}
					if a, err := n.svc.Article(ctx, 0, au.slug); check(err) && a.Body != v {
						stale.Add(1)
						t.Errorf("stale article: body %q, acknowledged %q", a.Body, v)
					}
				}
			}
		}()
	}
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				n, au := ns[(r+i)%3], authors[i%3]
				_, err := n.svc.Article(ctx, 0, au.slug)
				check(err)
				_, err = n.svc.Tags(ctx)
				check(err)
			}
		}()
	}
	waitUsable := func(phase string) {
		deadline := time.Now().Add(10 * time.Second)
		for _, n := range ns {
			for !n.cache.Usable() {
				if time.Now().After(deadline) {
					stop.Store(true)
					wg.Wait()
					t.Fatalf("%s: a node did not use the cache again", phase)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	phase := func(name string, d time.Duration, fault func()) {
		fault()
		time.Sleep(d)
		t.Logf("%s: %d requests, %d writes so far", name, requests.Load(), writes.Load())
	}
	phase("normal", 500*time.Millisecond, func() {})
	phase("killed", time.Second, rs.Kill)
	phase("restarted empty", 0, rs.Start)
	waitUsable("after the restart")
	time.Sleep(300 * time.Millisecond)
	phase("paused", 1500*time.Millisecond, rs.Pause)
	rs.Resume()
	waitUsable("after the pause")
	hits := func() (h uint64) {
		for _, n := range ns {
			x, _ := n.cache.Stats()
			h += x
		}
		return h
	}
	before := hits()
	phase("resumed", 500*time.Millisecond, func() {})
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests, %d acknowledged writes, %d failed, %d stale; %d cache hits after recovery",
		requests.Load(), writes.Load(), failed.Load(), stale.Load(), hits()-before)
	if failed.Load() > 0 || stale.Load() > 0 {
		t.Fatalf("%d failed requests, %d stale reads", failed.Load(), stale.Load())
	}
	if writes.Load() < 10 {
		t.Fatalf("only %d writes were acknowledged: the test proved little", writes.Load())
	}
	if hits() == before {
		t.Error("no cache hits after Redis came back: the nodes did not return to the cache")
	}
}
