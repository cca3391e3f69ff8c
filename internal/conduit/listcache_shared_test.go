package conduit_test

import (
	"context"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// With Redis, an anonymous first page one node read from the database is
// served by the other from Redis, without a list read; after a write
// through either node, neither serves the old page, from its memory or
// from Redis, and the page rebuilt by one is served to the other again.
// With Redis killed, restarted empty or paused, reads stay fresh and do
// not fail, and the nodes share pages again once Redis is back.
func TestSharedListPagesAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := redistest.Start(t)
	url := storetest.NewMigratedPostgresDatabase(t)
	var nodes [2]*conduit.Service
	var stores [2]*storetest.ListCounter
	var caches [2]*cache.Redis
	for i := range nodes {
		stores[i] = &storetest.ListCounter{Store: storetest.Node(t, url)}
		// 1 s calls and a 2 s lease: a timed-out call or a heartbeat
		// slower than half the lease on a loaded machine would make a node
		// bypass the tiers and read the list again. (A longer lease would
		// hold the write made while Redis is paused for that long.)
		caches[i] = rs.Cache(t, cache.RedisOptions{Timeout: time.Second, Lease: 2 * time.Second})
		nodes[i] = conduit.NewService(stores[i], caches[i], auth.Bcrypt{Cost: 4})
		conduit.KeepListsLong(nodes[i])
	}
	// awaitSynced waits until node i may use its list caches (its bucket
	// keys are tracked; one a write touched is tracked again).
	awaitSynced := func(i int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, ok := nodes[i].ListsStamp(ctx); ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never could use its list caches", i)
			}
		}
	}
	// Before the first writes: their tombstones expire Hold (2 s) later,
	// which Redis pushes as a change of the bucket keys, and a first read
	// that waited that long for the nodes to track them had its page's
	// buckets invalidated between its stamp and its keep.
	for i := range nodes {
		awaitSynced(i)
	}
	ann := mustRegister(t, nodes[0], "ann")
	art := mustCreate(t, nodes[0], ann.ID, "Go news", "go")
	goList := conduit.ArticleFilter{Tag: "go"}

	// read returns node i's anonymous first page of the go tag and how
	// many list reads reached its store; synced waits until the node may
	// use its list caches.
	read := func(i int, synced bool) (conduit.ArticlePage, int64) {
		t.Helper()
		if synced {
			awaitSynced(i)
		}
		n := stores[i].Lists()
		p, err := nodes[i].Articles(ctx, 0, goList)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		return p, stores[i].Lists() - n
	}
	if _, n := read(0, true); n != 1 {
		t.Fatalf("A's first read: %d list reads", n)
	}
	if p, n := read(1, true); n != 0 || p.Count != 1 {
		t.Fatalf("B's first read of the page A kept: %d list reads, %d articles", n, p.Count)
	}

	title := "Go news"
	// reads: the other node's list reads after the write (a favorite
	// changes only a count, which is not kept with the page).
	writes := []struct {
		node  int
		name  string
		write func(*conduit.Service) error
		shows func(conduit.ArticlePage) bool
		reads int64
	}{
		{1, "a favorite through B", func(s *conduit.Service) error {
			_, err := s.Favorite(ctx, ann.ID, art.Slug)
			return err
		}, func(p conduit.ArticlePage) bool { return p.Articles[len(p.Articles)-1].FavoritesCount == 1 }, 0},
		{0, "a create through A", func(s *conduit.Service) error {
			_, err := s.CreateArticle(ctx, ann.ID, conduit.NewArticle{Title: "More Go", Description: "d", Body: "b", Tags: []string{"go"}})
			return err
		}, func(p conduit.ArticlePage) bool { return p.Count == 2 }, 1},
		{1, "an edit through B", func(s *conduit.Service) error {
			title = "Go news, edited"
			_, err := s.UpdateArticle(ctx, ann.ID, art.Slug, conduit.ArticlePatch{Title: &title})
			return err
		}, func(p conduit.ArticlePage) bool { return p.Articles[len(p.Articles)-1].Title == title }, 1},
	}
	for _, w := range writes {
		for i := range nodes {
			read(i, true) // in both nodes' memory and in Redis
		}
		if err := w.write(nodes[w.node]); err != nil {
			t.Fatal(err)
		}
		other := 1 - w.node
		if p, n := read(other, true); n != w.reads || !w.shows(p) {
			t.Errorf("%s: the other node read the list %d times (want %d) and served %+v", w.name, n, w.reads, p.Articles)
		}
		if p, n := read(w.node, true); n != 0 || !w.shows(p) {
			t.Errorf("%s: the writing node read the list %d times (want 0: the other kept it) and served %+v", w.name, n, p.Articles)
		}
	}

	// Redis faults: each read through both nodes must be fresh and must
	// not fail; a write is made while Redis is down or paused, so that its
	// invalidation never reaches Redis.
	favorites := 1
	toggle := func(s *conduit.Service) {
		t.Helper()
		var err error
		if favorites == 1 {
			_, err = s.Unfavorite(ctx, ann.ID, art.Slug)
		} else {
			_, err = s.Favorite(ctx, ann.ID, art.Slug)
		}
		if err != nil {
			t.Fatal(err)
		}
		favorites = 1 - favorites
	}
	checkFresh := func(when string, synced bool) {
		t.Helper()
		for i := range nodes {
			if p, _ := read(i, synced); p.Articles[len(p.Articles)-1].FavoritesCount != favorites {
				t.Errorf("%s: node %d served favoritesCount %d, want %d", when, i, p.Articles[len(p.Articles)-1].FavoritesCount, favorites)
			}
		}
	}
	shared := func(when string) {
		t.Helper()
		toggle(nodes[0])
		read(0, true)
		if p, n := read(1, true); n != 0 || p.Articles[len(p.Articles)-1].FavoritesCount != favorites {
			t.Errorf("%s: B read the list %d times after A kept it (want 0), favoritesCount %d", when, n, p.Articles[len(p.Articles)-1].FavoritesCount)
		}
	}
	awaitUsable := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !caches[0].Usable() || !caches[1].Usable() {
			checkFresh("while Redis comes back", false)
			if time.Now().After(deadline) {
				t.Fatal("the nodes did not use Redis again")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	checkFresh("before the faults", true)
	rs.Kill()
	toggle(nodes[1])
	checkFresh("Redis killed", false)
	rs.Start() // empty
	awaitUsable()
	checkFresh("Redis restarted empty", true)
	shared("after the restart")

	for i := range nodes {
		read(i, true) // the page in memory and in Redis, with its versions
	}
	rs.Pause()
	toggle(nodes[1]) // its invalidation cannot reach Redis
	checkFresh("Redis paused", false)
	rs.Resume() // still holding the old page and the old versions
	awaitUsable()
	checkFresh("Redis resumed", true)
	shared("after the pause")
}

// afterList runs a hook once right after a list read, before the page is
// kept: a write that lands between a node's database read and its keeping
// the page.
type afterList struct {
	conduit.Store
	hook func()
}

func (s *afterList) ListArticles(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	p, err := s.Store.ListArticles(ctx, viewerID, f)
	if h := s.hook; h != nil {
		s.hook = nil
		h()
	}
	return p, err
}

// A page read from the database before a write that was acknowledged
// before the page is kept must not reach Redis with versions read after
// the write (they are current: the write's deletes made way for them):
// the other node would serve it as current. The reading node's ledger
// has heard of the write by the time its version reads are answered, and
// it does not keep the page.
func TestSharedListPageNotKeptAcrossAWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := redistest.Start(t)
	url := storetest.NewMigratedPostgresDatabase(t)
	st := &afterList{Store: storetest.Node(t, url)}
	// No Redis faults here: a long lease keeps a loaded machine's slow
	// heartbeat from making a node bypass the tiers.
	opts := cache.RedisOptions{Timeout: time.Second, Lease: time.Minute}
	a := conduit.NewService(st, rs.Cache(t, opts), auth.Bcrypt{Cost: 4})
	b := conduit.NewService(storetest.Node(t, url), rs.Cache(t, opts), auth.Bcrypt{Cost: 4})
	for _, s := range []*conduit.Service{a, b} {
		conduit.KeepListsLong(s)
	}
	ann := mustRegister(t, b, "ann")
	art := mustCreate(t, b, ann.ID, "Go news", "go")
	read := func(s *conduit.Service) conduit.ArticlePage {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, ok := s.ListsStamp(ctx); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a node never could use its list caches")
			}
		}
		p, err := s.Articles(ctx, 0, conduit.ArticleFilter{Tag: "go"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An edit of the title: it changes the page (a favorite no longer
	// does: the count is not kept with it).
	title := "Go news, edited"
	st.hook = func() {
		if _, err := b.UpdateArticle(ctx, ann.ID, art.Slug, conduit.ArticlePatch{Title: &title}); err != nil {
			t.Error(err)
		}
	}
	if p := read(a); p.Articles[0].Title != "Go news" {
		t.Fatalf("setup: A's read saw the edit made after it (%q)", p.Articles[0].Title)
	}
	for name, s := range map[string]*conduit.Service{"B": b, "A": a} {
		if p := read(s); p.Articles[0].Title != title {
			t.Errorf("%s served the page read before the acknowledged edit", name)
		}
	}
}

// WithSharedListTTL keeps the pages in Redis longer than each node keeps
// them in memory (the value ttl): a page the nodes dropped from memory is
// served from Redis without a list read, and a write still shows at once.
// With the nodes' list ttl for Redis too (before), the second reads
// below were database reads.
func TestSharedListPagesOutliveMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := redistest.Start(t)
	url := storetest.NewMigratedPostgresDatabase(t)
	opts := cache.RedisOptions{Timeout: time.Second, Lease: time.Minute}
	var nodes [2]*conduit.Service
	var stores [2]*storetest.ListCounter
	for i := range nodes {
		stores[i] = &storetest.ListCounter{Store: storetest.Node(t, url)}
		nodes[i] = conduit.NewService(stores[i], rs.Cache(t, opts), auth.Bcrypt{Cost: 4},
			conduit.WithListTTL(300*time.Millisecond), conduit.WithSharedListTTL(time.Hour))
	}
	ann := mustRegister(t, nodes[0], "ann")
	art := mustCreate(t, nodes[0], ann.ID, "Go news", "go")
	read := func(i int) (conduit.ArticlePage, int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, ok := nodes[i].ListsStamp(ctx); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never could use its list caches", i)
			}
		}
		n := stores[i].Lists()
		p, err := nodes[i].Articles(ctx, 0, conduit.ArticleFilter{Tag: "go"})
		if err != nil {
			t.Fatal(err)
		}
		return p, stores[i].Lists() - n
	}
	if _, n := read(0); n != 1 {
		t.Fatalf("A's first read: %d list reads, want 1", n)
	}
	time.Sleep(500 * time.Millisecond) // past the nodes' 300 ms in memory
	for i, name := range []string{"A", "B"} {
		if p, n := read(i); n != 0 || len(p.Articles) != 1 {
			t.Fatalf("%s after the page left A's memory: %d articles, %d list reads; want it from Redis", name, len(p.Articles), n)
		}
	}
	title := "Go news, edited"
	if _, err := nodes[1].UpdateArticle(ctx, ann.ID, art.Slug, conduit.ArticlePatch{Title: &title}); err != nil {
		t.Fatal(err)
	}
	conduit.AwaitListRebuilds(nodes[1])
	for i, name := range []string{"A", "B"} {
		if p, _ := read(i); p.Articles[0].Title != title {
			t.Errorf("%s served %q after the acknowledged edit", name, p.Articles[0].Title)
		}
	}
}
