package conduit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Anonymous first pages are served from memory, and every write on this
// node that changes what they show is visible on the next read.
func TestAnonymousFirstPagesCached(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &storetest.ListCounter{Store: db}
		svc := conduit.NewService(st, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		ann := mustRegister(t, svc, "ann")
		bob := mustRegister(t, svc, "bob")
		first := mustCreate(t, svc, ann.ID, "First", "go")

		list := func(f conduit.ArticleFilter) conduit.ArticlePage {
			t.Helper()
			p, err := svc.Articles(ctx, 0, f)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		global := conduit.ArticleFilter{}
		list(global)
		n := st.Lists()
		if p := list(global); p.Count != 1 || st.Lists() != n {
			t.Fatalf("second anonymous first page: count %d, store queried %d times more", p.Count, st.Lists()-n)
		}
		// Later pages always reach the store (a signed-in viewer's first
		// page is the kept one with the viewer's marks: viewermarks_test.go).
		n = st.Lists()
		list(conduit.ArticleFilter{Offset: 1})
		list(conduit.ArticleFilter{Offset: 1})
		if st.Lists() != n+2 {
			t.Error("a later page was served from the list cache")
		}

		// Each write shows on the next anonymous read.
		second := mustCreate(t, svc, bob.ID, "Second", "go")
		if p := list(global); p.Count != 2 || p.Articles[0].Slug != second.Slug {
			t.Fatalf("after create: %d articles, first %q", p.Count, p.Articles[0].Slug)
		}
		if _, err := svc.Favorite(ctx, bob.ID, first.Slug); err != nil {
			t.Fatal(err)
		}
		if p := list(global); p.Articles[1].FavoritesCount != 1 {
			t.Errorf("after favorite: favoritesCount %d", p.Articles[1].FavoritesCount)
		}
		if p := list(conduit.ArticleFilter{FavoritedBy: "bob"}); p.Count != 1 {
			t.Errorf("bob's favorites after favorite: %d", p.Count)
		}
		if _, err := svc.Unfavorite(ctx, bob.ID, first.Slug); err != nil {
			t.Fatal(err)
		}
		if p := list(conduit.ArticleFilter{FavoritedBy: "bob"}); p.Count != 0 {
			t.Errorf("bob's favorites after unfavorite: %d", p.Count)
		}
		if _, err := svc.UpdateUser(ctx, ann.ID, conduit.UserPatch{Image: ptr("https://example.com/a.png")}); err != nil {
			t.Fatal(err)
		}
		if p := list(global); p.Articles[1].Author.Image != "https://example.com/a.png" {
			t.Errorf("after profile change: author image %q", p.Articles[1].Author.Image)
		}
		if _, err := svc.UpdateArticle(ctx, bob.ID, second.Slug, conduit.ArticlePatch{Title: ptr("Renamed")}); err != nil {
			t.Fatal(err)
		}
		if p := list(conduit.ArticleFilter{Tag: "go"}); p.Articles[0].Title != "Renamed" {
			t.Errorf("after edit: title %q", p.Articles[0].Title)
		}
		if err := svc.DeleteArticle(ctx, bob.ID, "renamed"); err != nil {
			t.Fatal(err)
		}
		if p := list(global); p.Count != 1 {
			t.Errorf("after delete: %d articles", p.Count)
		}
	})
}

// Writes clear only the cached first pages that show what they changed:
// a favorite, the favoriter's favorites (the pages showing the article
// are served with its new count); a new article, the global list and its
// author's and tags' lists. Every other cached page is still served from
// memory, and every changed one shows the write on the next read.
func TestListInvalidationIsNarrow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := conduit.NewService(db, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
		conduit.KeepListsLong(svc)
		checkNarrowLists(t, svc, svc)
	})
}

// checkNarrowLists writes through w and reads anonymous first pages
// through r (the same node, or another one that must hear of w's writes
// before they are answered).
func checkNarrowLists(t *testing.T, w, r *conduit.Service) {
	t.Helper()
	ctx := context.Background()
	ann := mustRegister(t, w, "ann")
	bob := mustRegister(t, w, "bob")
	goArt := mustCreate(t, w, ann.ID, "Go news", "go")
	mustCreate(t, w, bob.ID, "Rust news", "rust")

	// read returns r's anonymous first page of f and whether it was a hit.
	read := func(f conduit.ArticleFilter) (conduit.ArticlePage, bool) {
		t.Helper()
		// With Redis, the list caches are not used while a bucket key a
		// write just touched is being tracked again: wait that out, so
		// that a page served from the store is one the write dropped.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := r.ListsStamp(ctx); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the reading node never could use its list caches")
			}
			time.Sleep(time.Millisecond)
		}
		h0, _ := r.ListCacheStats()
		p, err := r.Articles(ctx, 0, f)
		if err != nil {
			t.Fatal(err)
		}
		h1, _ := r.ListCacheStats()
		return p, h1 > h0
	}
	goList, rustList := conduit.ArticleFilter{Tag: "go"}, conduit.ArticleFilter{Tag: "rust"}
	bobFavs, global := conduit.ArticleFilter{FavoritedBy: "bob"}, conduit.ArticleFilter{}
	cacheAll := func() {
		t.Helper()
		for _, f := range []conduit.ArticleFilter{goList, rustList, bobFavs, global} {
			read(f)
			if _, hit := read(f); !hit {
				t.Fatalf("%+v: not cached on the second read", f)
			}
		}
	}

	cacheAll()
	if _, err := w.Favorite(ctx, bob.ID, goArt.Slug); err != nil {
		t.Fatal(err)
	}
	// The pages showing the article are kept, served with its new count.
	if p, hit := read(goList); !hit || p.Articles[0].FavoritesCount != 1 {
		t.Errorf("go list after the favorite: hit %v (want true), favoritesCount %d", hit, p.Articles[0].FavoritesCount)
	}
	if p, hit := read(bobFavs); hit || p.Count != 1 {
		t.Errorf("bob's favorites after the favorite: hit %v, %d articles", hit, p.Count)
	}
	if p, hit := read(global); !hit || p.Articles[1].FavoritesCount != 1 {
		t.Errorf("global list after the favorite: hit %v (want true), favoritesCount %d", hit, p.Articles[1].FavoritesCount)
	}
	if _, hit := read(rustList); !hit {
		t.Error("the rust list, which does not show the article, was dropped by the favorite")
	}

	cacheAll()
	third := mustCreate(t, w, ann.ID, "More Go", "go")
	if p, _ := read(goList); p.Count != 2 || p.Articles[0].Slug != third.Slug {
		t.Errorf("go list after a create: %d articles, first %q", p.Count, p.Articles[0].Slug)
	}
	if p, _ := read(global); p.Count != 3 {
		t.Errorf("global list after a create: %d articles", p.Count)
	}
	for _, f := range []conduit.ArticleFilter{rustList, bobFavs} {
		if _, hit := read(f); !hit {
			t.Errorf("%+v, which the new article is not on, was dropped by the create", f)
		}
	}

	// A profile change shows wherever the author does; an edit and a
	// delete wherever the article is.
	cacheAll()
	if _, err := w.UpdateUser(ctx, ann.ID, conduit.UserPatch{Bio: ptr("new bio"), Image: ptr("https://example.com/ann.png")}); err != nil {
		t.Fatal(err)
	}
	if p, _ := read(bobFavs); p.Articles[0].Author.Image != "https://example.com/ann.png" {
		t.Errorf("bob's favorites after ann's profile change: image %q", p.Articles[0].Author.Image)
	}
	if _, hit := read(rustList); !hit {
		t.Error("the rust list, which does not show ann, was dropped by her profile change")
	}
	if _, err := w.UpdateArticle(ctx, ann.ID, goArt.Slug, conduit.ArticlePatch{Title: ptr("Go news, edited"), Tags: &[]string{"go", "rust"}}); err != nil {
		t.Fatal(err)
	}
	if p, _ := read(bobFavs); p.Articles[0].Title != "Go news, edited" {
		t.Errorf("bob's favorites after an edit: title %q", p.Articles[0].Title)
	}
	if p, _ := read(rustList); p.Count != 2 {
		t.Errorf("rust list after the article joined the tag: %d articles", p.Count)
	}
	if err := w.DeleteArticle(ctx, ann.ID, third.Slug); err != nil {
		t.Fatal(err)
	}
	if p, _ := read(global); p.Count != 2 {
		t.Errorf("global list after a delete: %d articles", p.Count)
	}

	// An unfavorite; an edit that leaves a tag and changes what previews
	// show; a new username (the author's and favoriter's lists are named
	// by it).
	annList, annNew := conduit.ArticleFilter{Author: "ann"}, conduit.ArticleFilter{Author: "annie"}
	bobNew := conduit.ArticleFilter{FavoritedBy: "robert"}
	cacheAll()
	for _, f := range []conduit.ArticleFilter{annList, annNew, bobNew} {
		read(f)
	}
	if _, err := w.Unfavorite(ctx, bob.ID, goArt.Slug); err != nil {
		t.Fatal(err)
	}
	if p, _ := read(bobFavs); p.Count != 0 {
		t.Errorf("bob's favorites after the unfavorite: %d", p.Count)
	}
	if p, hit := read(rustList); !hit || p.Articles[len(p.Articles)-1].FavoritesCount != 0 {
		t.Errorf("rust list after the unfavorite: hit %v (want true), favoritesCount %d", hit, p.Articles[len(p.Articles)-1].FavoritesCount)
	}
	if _, err := w.UpdateArticle(ctx, ann.ID, goArt.Slug, conduit.ArticlePatch{Description: ptr("New description"), Tags: &[]string{"rust"}}); err != nil {
		t.Fatal(err)
	}
	if p, _ := read(goList); p.Count != 0 {
		t.Errorf("go list after the article left the tag: %d articles", p.Count)
	}
	if p, _ := read(annList); p.Count != 1 || p.Articles[0].Description != "New description" {
		t.Errorf("ann's list after an edit: %d articles, description %q", p.Count, p.Articles[0].Description)
	}
	if _, err := w.UpdateUser(ctx, ann.ID, conduit.UserPatch{Username: ptr("annie")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.UpdateUser(ctx, bob.ID, conduit.UserPatch{Username: ptr("robert")}); err != nil {
		t.Fatal(err)
	}
	if p, _ := read(annList); p.Count != 0 {
		t.Errorf("the list of ann's old name after the rename: %d articles", p.Count)
	}
	if p, _ := read(annNew); p.Count != 1 || p.Articles[0].Author.Username != "annie" {
		t.Errorf("the list of ann's new name: %d articles", p.Count)
	}
	if p, _ := read(rustList); p.Count != 2 || p.Articles[0].Author.Username != "robert" || p.Articles[1].Author.Username != "annie" {
		t.Errorf("rust list after the renames: %+v", p.Articles)
	}
	if _, err := w.Favorite(ctx, bob.ID, goArt.Slug); err != nil {
		t.Fatal(err)
	}
	if p, _ := read(bobNew); p.Count != 1 {
		t.Errorf("the favorites of bob's new name after a favorite: %d", p.Count)
	}
}

// The same across nodes: a write through one node clears, before it is
// answered, exactly the pages it changed on another node, whether the
// invalidations travel by PostgreSQL LISTEN/NOTIFY (cache.Coherent) or by
// Redis (cache.Redis).
func TestListInvalidationAcrossNodes(t *testing.T) {
	t.Parallel()
	t.Run("coherent", func(t *testing.T) {
		t.Parallel()
		url := storetest.NewMigratedPostgresDatabase(t)
		a, ca := coherentNode(t, url)
		b, cb := coherentNode(t, url)
		storetest.AwaitPeers(t, ca, cb)
		checkNarrowLists(t, a, b)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		rs := redistest.Start(t)
		url := storetest.NewMigratedPostgresDatabase(t)
		var svcs []*conduit.Service
		for range 2 {
			db := storetest.Node(t, url)
			// 1 s calls and a minute's lease: a timed-out call, or a
			// lapsed lease or a given-up invalidation (a round trip of
			// over 250 ms under load), makes a node bypass its list
			// caches, which this test would count as lost pages.
			svc := conduit.NewService(db, rs.Cache(t, cache.RedisOptions{Timeout: time.Second, Lease: time.Minute}), auth.Bcrypt{Cost: 4})
			conduit.KeepListsLong(svc)
			svcs = append(svcs, svc)
		}
		checkNarrowLists(t, svcs[0], svcs[1])
	})
}

// A favorite or unfavorite drops none of the kept first pages showing the
// article, on the writing node or another one: each is served with the
// article's new count at once, with no list read; only the favoriter's
// favorites list, whose members changed, is read again. Were the count
// served from the kept page, the reads after the favorite would show 0.
func TestFavoriteKeepsListPages(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			st := &storetest.ListCounter{Store: db}
			svc := conduit.NewService(st, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
			conduit.KeepListsLong(svc)
			checkFavoriteKeepsPages(t, svc, svc, st)
		})
	})
	t.Run("coherent", func(t *testing.T) {
		t.Parallel()
		url := storetest.NewMigratedPostgresDatabase(t)
		a, ca := coherentNode(t, url)
		db := storetest.Node(t, url)
		cb := storetest.Coherent(t, db)
		st := &storetest.ListCounter{Store: db}
		b := conduit.NewService(st, cb, auth.Bcrypt{Cost: 4})
		conduit.KeepListsLong(b)
		storetest.AwaitPeers(t, ca, cb)
		checkFavoriteKeepsPages(t, a, b, st)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		rs := redistest.Start(t)
		url := storetest.NewMigratedPostgresDatabase(t)
		// No Redis faults here: a long lease keeps a loaded machine's slow
		// heartbeat from making a node bypass the tiers and read again.
		opts := cache.RedisOptions{Timeout: time.Second, Lease: time.Minute}
		a := conduit.NewService(storetest.Node(t, url), rs.Cache(t, opts), auth.Bcrypt{Cost: 4})
		st := &storetest.ListCounter{Store: storetest.Node(t, url)}
		b := conduit.NewService(st, rs.Cache(t, opts), auth.Bcrypt{Cost: 4})
		for _, s := range []*conduit.Service{a, b} {
			conduit.KeepListsLong(s)
		}
		checkFavoriteKeepsPages(t, a, b, st)
	})
}

// checkFavoriteKeepsPages favorites through w and reads anonymous first
// pages through r, whose list reads st counts.
func checkFavoriteKeepsPages(t *testing.T, w, r *conduit.Service, st *storetest.ListCounter) {
	t.Helper()
	ctx := context.Background()
	ann := mustRegister(t, w, "ann")
	bob := mustRegister(t, w, "bob")
	art := mustCreate(t, w, ann.ID, "Go news", "go")
	showing := []conduit.ArticleFilter{{}, {Tag: "go"}, {Author: "ann"}}
	bobFavs := conduit.ArticleFilter{FavoritedBy: "bob"}
	// read returns r's page of f and how many list reads reached its store.
	read := func(f conduit.ArticleFilter) (conduit.ArticlePage, int64) {
		t.Helper()
		awaitLists(t, r)
		n := st.Lists()
		p, err := r.Articles(ctx, 0, f)
		if err != nil {
			t.Fatal(err)
		}
		return p, st.Lists() - n
	}
	for _, f := range append(showing, bobFavs) {
		read(f)
		if _, n := read(f); n != 0 {
			t.Fatalf("%+v: not kept on the second read", f)
		}
	}
	for _, on := range []bool{true, false, true} {
		want := 0
		if on {
			want = 1
		}
		setFavorite(t, w, bob.ID, art.Slug, on)
		for _, f := range showing {
			if p, n := read(f); n != 0 || len(p.Articles) != 1 || p.Articles[0].FavoritesCount != want {
				t.Errorf("favorite=%v, %+v: %d list reads (want 0), articles %+v (want favoritesCount %d)", on, f, n, p.Articles, want)
			}
		}
		if p, n := read(bobFavs); n != 1 || p.Count != want {
			t.Errorf("favorite=%v: bob's favorites read %d times (want 1), %d articles (want %d)", on, n, p.Count, want)
		}
	}
}

// awaitLists waits until s may use its list caches: with Redis, not while
// a bucket key a write just touched is being tracked again, when pages are
// neither kept nor served, so a read then would count as a dropped page.
func awaitLists(t *testing.T, s *conduit.Service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := s.ListsStamp(context.Background()); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the node never could use its list caches")
		}
		time.Sleep(time.Millisecond)
	}
}

// coherentNode is a service as cmd/conduit wires it on PostgreSQL without
// Redis: a memory cache kept coherent through LISTEN/NOTIFY.
func coherentNode(t *testing.T, url string) (*conduit.Service, *cache.Coherent) {
	t.Helper()
	db := storetest.Node(t, url)
	c := storetest.Coherent(t, db)
	svc := conduit.NewService(db, c, auth.Bcrypt{Cost: 4})
	conduit.KeepListsLong(svc)
	return svc, c
}

// Without a cache that reports list changes (--cache-items 0: cache.None),
// nothing is kept: two nodes on one database each read the other's write
// at once, and the site is told not to keep pages.
func TestNoCacheKeepsNoLists(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &storetest.ListCounter{Store: db}
		a := conduit.NewService(db, cache.None{}, auth.Bcrypt{Cost: 4})
		b := conduit.NewService(st, cache.None{}, auth.Bcrypt{Cost: 4})
		ann := mustRegister(t, a, "ann")
		mustCreate(t, a, ann.ID, "First", "go")
		for range 2 {
			if _, err := b.Articles(ctx, 0, conduit.ArticleFilter{}); err != nil {
				t.Fatal(err)
			}
		}
		if n := st.Lists(); n != 2 {
			t.Errorf("two anonymous first pages without a cache: %d store reads, want 2", n)
		}
		mustCreate(t, a, ann.ID, "Second", "go")
		if p, err := b.Articles(ctx, 0, conduit.ArticleFilter{}); err != nil || p.Count != 2 {
			t.Errorf("B after A's create: %d articles, %v", p.Count, err)
		}
		if _, ok := b.ListsStamp(ctx); ok || b.ListTTL() != 0 {
			t.Errorf("without a cache the site may keep pages: stamp known %v, ttl %v", ok, b.ListTTL())
		}
	})
}

// syncFlag is a cache whose invalidations reach this node only while up
// (Sync), like cache.Coherent while its listener is connected.
type syncFlag struct {
	*cache.Memory
	up atomic.Bool
}

func (c *syncFlag) Sync(context.Context) bool { return c.up.Load() }

// While the cache cannot say that this node heard every invalidation,
// anonymous first pages come from the store and are not kept; kept pages
// are served again once it can.
func TestListsBypassedWhileNotSynced(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &storetest.ListCounter{Store: db}
		c := &syncFlag{Memory: cache.NewMemory(100)}
		svc := conduit.NewService(st, c, auth.Bcrypt{Cost: 4}, conduit.WithListTTL(time.Minute))
		ann := mustRegister(t, svc, "ann")
		mustCreate(t, svc, ann.ID, "First", "go")
		reads := func() int64 {
			t.Helper()
			n := st.Lists()
			for range 3 {
				if _, err := svc.Articles(ctx, 0, conduit.ArticleFilter{}); err != nil {
					t.Fatal(err)
				}
			}
			return st.Lists() - n
		}
		if n := reads(); n != 3 {
			t.Errorf("not synced: %d of 3 reads reached the store", n)
		}
		if _, ok := svc.ListsStamp(ctx); ok {
			t.Error("not synced, yet the site may build a page to keep")
		}
		c.up.Store(true)
		if n := reads(); n != 1 {
			t.Errorf("synced: %d of 3 reads reached the store, want 1", n)
		}
		c.up.Store(false)
		if n := reads(); n != 3 {
			t.Errorf("not synced again: %d of 3 reads reached the store", n)
		}
	})
}
