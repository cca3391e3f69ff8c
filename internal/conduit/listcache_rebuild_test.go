package conduit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// rebuildNodes starts two services on one PostgreSQL database sharing one
// Redis, keeping first pages a minute, with their stores counting list
// reads; a has WithListRebuilds, and so has b if both.
func rebuildNodes(t *testing.T, both bool) (a, b *conduit.Service, sa, sb *hookedLists) {
	t.Helper()
	rs := redistest.Start(t)
	url := storetest.NewMigratedPostgresDatabase(t)
	// No Redis faults here: a long lease keeps a loaded machine's slow
	// heartbeat from making a node bypass the tiers.
	opts := cache.RedisOptions{Timeout: time.Second, Lease: time.Minute}
	sa = &hookedLists{ListCounter: storetest.ListCounter{Store: storetest.Node(t, url)}}
	sb = &hookedLists{ListCounter: storetest.ListCounter{Store: storetest.Node(t, url)}}
	a = conduit.NewService(sa, rs.Cache(t, opts), auth.Bcrypt{Cost: 4}, conduit.WithListRebuilds())
	var bOpts []conduit.Option
	if both {
		bOpts = append(bOpts, conduit.WithListRebuilds())
	}
	b = conduit.NewService(sb, rs.Cache(t, opts), auth.Bcrypt{Cost: 4}, bOpts...)
	conduit.KeepListsLong(a)
	conduit.KeepListsLong(b)
	return a, b, sa, sb
}

// hookedLists counts list reads and runs a hook, once, right after one:
// a write that lands between a (background) list read and its keeping.
type hookedLists struct {
	storetest.ListCounter
	mu   sync.Mutex
	hook func()
}

func (s *hookedLists) ListArticles(ctx context.Context, viewerID int64, f conduit.ArticleFilter) (conduit.ArticlePage, error) {
	p, err := s.ListCounter.ListArticles(ctx, viewerID, f)
	s.mu.Lock()
	h := s.hook
	s.hook = nil
	s.mu.Unlock()
	if h != nil {
		h()
	}
	return p, err
}

// readList returns s's anonymous first page f, once s may use its list
// caches, and how many list reads reached st meanwhile.
func readList(t *testing.T, s *conduit.Service, st *hookedLists, f conduit.ArticleFilter) (conduit.ArticlePage, int64) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := s.ListsStamp(ctx); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a node never could use its list caches")
		}
	}
	n := st.Lists()
	p, err := s.Articles(ctx, 0, f)
	if err != nil {
		t.Fatal(err)
	}
	return p, st.Lists() - n
}

// After a new article, the node that wrote it rebuilds the first pages it
// kept that the article changed (the global list, at each size, and its
// tag's), in the background; then neither node reads those lists from the
// database again, and both show the new article. A page the write did not
// change is not rebuilt.
func TestListRebuiltAfterCreate(t *testing.T) {
	t.Parallel()
	a, b, sa, sb := rebuildNodes(t, false)
	// The writer's rebuilds alone: its rebuilds on hearing of its own
	// writes (TestListRebuiltOnEveryNode) come after the test.
	conduit.DelayRemoteRebuilds(a, time.Hour)
	ann := mustRegister(t, a, "ann")
	mustCreate(t, a, ann.ID, "Go news", "go")
	mustCreate(t, a, ann.ID, "Rust news", "rust")
	lists := map[string]conduit.ArticleFilter{
		"global": {}, "global, 10": {Limit: 10}, "go": {Tag: "go"}, "rust": {Tag: "rust"},
	}
	for name, f := range lists {
		if _, n := readList(t, a, sa, f); n != 1 {
			t.Fatalf("%s: A's first read: %d list reads", name, n)
		}
		if _, n := readList(t, b, sb, f); n != 0 {
			t.Fatalf("%s: B's first read of the page A kept: %d list reads", name, n)
		}
	}
	before := sa.Lists()
	mustCreate(t, a, ann.ID, "More Go", "go")
	conduit.AwaitListRebuilds(a)
	if n := sa.Lists() - before; n != 3 {
		t.Errorf("A rebuilt %d pages, want 3 (the global list at two sizes, the go tag)", n)
	}
	if kept, lost := a.ListRebuildStats(); kept != 3 || lost != 0 {
		t.Errorf("ListRebuildStats = %d kept, %d lost; want 3, 0", kept, lost)
	}
	want := map[string]int{"global": 3, "global, 10": 3, "go": 2, "rust": 1}
	for name, f := range lists {
		// B first: without the rebuild it would read the list, and A's
		// read would then find B's page in Redis.
		for _, node := range []struct {
			name string
			s    *conduit.Service
			st   *hookedLists
		}{{"B", b, sb}, {"A", a, sa}} {
			p, n := readList(t, node.s, node.st, f)
			if n != 0 || p.Count != want[name] || (name != "rust" && p.Articles[0].Title != "More Go") {
				t.Errorf("%s on %s after the create: %d list reads (want 0), %d articles (want %d)", name, node.name, n, p.Count, want[name])
			}
		}
	}
	if hits, misses := b.ListCacheStats(); hits != 8 || misses != 0 {
		t.Errorf("B's list cache: %d hits, %d misses; want 8, 0", hits, misses)
	}

	// The rebuilt pages were served since: the next create rebuilds them
	// again; nobody reads them then, so the one after does not.
	for i, want := range []int64{3, 0} {
		before := sa.Lists()
		mustCreate(t, a, ann.ID, "Go again", "go")
		conduit.AwaitListRebuilds(a)
		if n := sa.Lists() - before; n != want {
			t.Errorf("create %d without reads between: A rebuilt %d pages, want %d", i+2, n, want)
		}
	}
}

// A rebuild that a later acknowledged write overtakes (an edit lands
// between the rebuild's list read and its keeping the page) keeps
// nothing that either node serves: both show the edit.
func TestListRebuildNotKeptAcrossAWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, sa, sb := rebuildNodes(t, false)
	// Only the rebuild after A's create: A's rebuild on hearing of the
	// edit, which is fresh, comes after the test.
	conduit.DelayRemoteRebuilds(a, time.Hour)
	ann := mustRegister(t, b, "ann")
	art := mustCreate(t, b, ann.ID, "Go news", "go")
	goList := conduit.ArticleFilter{Tag: "go"}
	readList(t, a, sa, goList)
	readList(t, b, sb, goList)

	title := "Go news, edited"
	sa.mu.Lock()
	sa.hook = func() { // in A's rebuild, after its list read
		if _, err := b.UpdateArticle(ctx, ann.ID, art.Slug, conduit.ArticlePatch{Title: &title}); err != nil {
			t.Error(err)
		}
	}
	sa.mu.Unlock()
	mustCreate(t, a, ann.ID, "More Go", "go")
	conduit.AwaitListRebuilds(a)
	if kept, lost := a.ListRebuildStats(); kept != 0 || lost != 1 {
		t.Errorf("ListRebuildStats = %d kept, %d lost; want the one rebuild lost", kept, lost)
	}
	for node, s := range map[string]*conduit.Service{"B": b, "A": a} {
		st := sa
		if node == "B" {
			st = sb
		}
		p, _ := readList(t, s, st, goList)
		if p.Count != 2 || p.Articles[1].Title != title {
			t.Errorf("%s served %+v, want both articles and the edited title", node, p.Articles)
		}
	}
}

// Every node rebuilds the pages it kept and served that another node's
// write dropped, a moment later: from Redis when the writing node has
// rebuilt them already (the global list, read on both), else from the
// database (a tag's page read only on B, which the writer never kept).
// Then B serves both without a list read.
func TestListRebuiltOnEveryNode(t *testing.T) {
	t.Parallel()
	a, b, sa, sb := rebuildNodes(t, true)
	conduit.DelayRemoteRebuilds(b, 3*time.Second) // A's rebuild is done by then
	ann := mustRegister(t, a, "ann")
	mustCreate(t, a, ann.ID, "Go news", "go")
	global, goList := conduit.ArticleFilter{}, conduit.ArticleFilter{Tag: "go"}
	readList(t, a, sa, global)
	readList(t, b, sb, global)
	readList(t, b, sb, goList)
	if n := sa.Lists(); n != 1 {
		t.Fatalf("setup: A read %d lists, want 1 (the global list)", n)
	}

	mustCreate(t, a, ann.ID, "More Go", "go")
	conduit.AwaitListRebuilds(a)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		kept, _ := b.ListRebuildStats()
		if kept >= 1 && b.ListRebuildsShared() >= 1 {
			break
		}
		if time.Now().After(deadline) {
			kept, lost := b.ListRebuildStats()
			t.Fatalf("B never rebuilt both pages: %d read and kept, %d taken from Redis, %d lost", kept, b.ListRebuildsShared(), lost)
		}
	}
	conduit.AwaitListRebuilds(b)
	if kept, lost := b.ListRebuildStats(); kept != 1 || lost != 0 || b.ListRebuildsShared() != 1 {
		t.Errorf("B's rebuilds: %d read and kept (want 1: the go tag), %d from Redis (want 1: the global list), %d lost", kept, b.ListRebuildsShared(), lost)
	}
	if kept, _ := a.ListRebuildStats(); kept != 1 {
		t.Errorf("A read and kept %d pages, want 1 (the global list; it never kept the go tag's)", kept)
	}
	for name, f := range map[string]conduit.ArticleFilter{"global": global, "go": goList} {
		if p, n := readList(t, b, sb, f); n != 0 || p.Count != 2 {
			t.Errorf("%s on B after A's create: %d list reads (want 0), %d articles (want 2)", name, n, p.Count)
		}
	}
}
