package web

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Pages kept on node B follow every write made through node A that
// changes what they show, by the time A answers it, whether the
// invalidations travel by PostgreSQL LISTEN/NOTIFY (cache.Coherent) or by
// Redis; pages the write did not touch stay kept. The pages are kept for
// a minute here, so only the invalidations can make B show a write.
func TestPageCacheAcrossNodes(t *testing.T) {
	t.Parallel()
	keep := conduit.WithListTTL(time.Minute)
	t.Run("coherent", func(t *testing.T) {
		t.Parallel()
		url := storetest.NewMigratedPostgresDatabase(t)
		a, ca := coherentSite(t, url, keep)
		b, cb := coherentSite(t, url, keep)
		storetest.AwaitPeers(t, ca, cb)
		checkPagesFollowWrites(t, a, b)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		rs := redistest.Start(t)
		url := storetest.NewMigratedPostgresDatabase(t)
		var sites []*site
		for range 2 {
			// 1 s calls and a minute's lease: a timed-out call, or a
			// lapsed lease or a given-up invalidation (a round trip of
			// over 250 ms under load), makes a node bypass its page
			// cache, which this test would count as a lost page.
			c := rs.Cache(t, cache.RedisOptions{Timeout: time.Second, Lease: time.Minute})
			sites = append(sites, newSiteOn(t, conduit.NewService(storetest.Node(t, url), c, auth.Bcrypt{Cost: 4}, keep), Options{}))
		}
		checkPagesFollowWrites(t, sites[0], sites[1])
	})
}

// coherentSite is a site on a node as cmd/conduit wires it on PostgreSQL
// without Redis: a memory cache kept coherent through LISTEN/NOTIFY.
func coherentSite(t *testing.T, url string, opts ...conduit.Option) (*site, *cache.Coherent) {
	t.Helper()
	db := storetest.Node(t, url)
	c := storetest.Coherent(t, db)
	return newSiteOn(t, conduit.NewService(db, c, auth.Bcrypt{Cost: 4}, opts...), Options{}), c
}

// checkPagesFollowWrites writes through a (its forms, or its service for
// what the site has no form for) and reads anonymous pages on b.
func checkPagesFollowWrites(t *testing.T, a, b *site) {
	t.Helper()
	ctx := context.Background()
	writer := a.browser().signUp("writer")
	news := writer.publish("News post", "news")
	sports := writer.publish("Sports post", "sports")
	fan := a.browser().signUp("fan")
	anon := b.browser()

	// view returns b's anonymous page and whether b served it from its
	// page cache.
	view := func(path string) (response, bool) {
		t.Helper()
		waitSynced(t, b.svc)
		h0, _ := b.handler.(*Site).PageCacheStats()
		res := anon.get(path)
		wantStatus(t, res, http.StatusOK)
		h1, _ := b.handler.(*Site).PageCacheStats()
		return res, h1 > h0
	}
	paths := []string{"/", "/?tag=news", "/?tag=sports", "/profile/writer", "/profile/fan/favorites"}
	keepAll := func() {
		t.Helper()
		for _, p := range paths {
			view(p)
			if _, hit := view(p); !hit {
				t.Fatalf("%s: not kept on the second view", p)
			}
		}
	}
	kept := func(what string, ps ...string) {
		t.Helper()
		for _, p := range ps {
			if _, hit := view(p); !hit {
				t.Errorf("%s, which %s does not change, was dropped", p, what)
			}
		}
	}
	count := func(n, title string) string {
		return n + `<span class="visually-hidden"> favorites: favorite “` + title + `”`
	}

	// A favorite: the pages showing the article stay kept and show its
	// new count (filled in when served); the favoriter's page is rebuilt.
	keepAll()
	if res := fan.post("/article/"+news+"/favorite", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("favorite: %d", res.StatusCode)
	}
	for _, p := range []string{"/", "/?tag=news", "/profile/writer"} {
		res, hit := view(p)
		wantContains(t, res, count("1", "News post"))
		if !hit {
			t.Errorf("%s, which shows the favorited article, was dropped by the favorite", p)
		}
	}
	res, _ := view("/profile/fan/favorites")
	wantContains(t, res, "News post")
	kept("a favorite of the news post", "/?tag=sports")

	keepAll()
	if res := fan.post("/article/"+news+"/unfavorite", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("unfavorite: %d", res.StatusCode)
	}
	res, _ = view("/?tag=news")
	wantContains(t, res, count("0", "News post"))
	res, _ = view("/profile/fan/favorites")
	wantContains(t, res, "No favorited articles yet.")
	kept("an unfavorite of the news post", "/?tag=sports", "/?tag=news", "/")

	keepAll()
	writer.publish("More news", "news fresh")
	for _, p := range []string{"/", "/?tag=news", "/profile/writer"} {
		res, _ := view(p)
		wantContains(t, res, "More news")
	}
	res, _ = view("/")
	wantContains(t, res, `href="/?tag=fresh"`) // the popular tags
	res, _ = view("/?tag=sports")
	wantContains(t, res, `href="/?tag=fresh"`) // every home and tag page shows them
	kept("a new article in other tags", "/profile/fan/favorites")

	// A new article that leaves the popular tags as they were (news is
	// first already) leaves the pages of other tags kept.
	keepAll()
	writer.publish("Fresh take", "news")
	res, _ = view("/?tag=news")
	wantContains(t, res, "Fresh take")
	kept("a new article that does not reorder the popular tags", "/?tag=sports", "/profile/fan/favorites")

	// An edit: title and description wherever the article is shown, and
	// the lists of the tags it left and joined.
	keepAll()
	title, desc := "Sports post, edited", "Edited description"
	if _, err := a.svc.UpdateArticle(ctx, userID(t, a, "writer"), sports, conduit.ArticlePatch{Title: &title, Description: &desc, Tags: &[]string{"news"}}); err != nil {
		t.Fatal(err)
	}
	res, _ = view("/?tag=news")
	wantContains(t, res, title, desc)
	res, _ = view("/?tag=sports")
	wantNotContains(t, res, title)
	res, _ = view("/profile/writer")
	wantContains(t, res, title)
	kept("an edit of an article fan did not favorite", "/profile/fan/favorites")

	// A profile change: the profile page and the author wherever shown.
	keepAll()
	bio, img := "A brand new bio", "https://example.com/writer.png"
	if _, err := a.svc.UpdateUser(ctx, userID(t, a, "writer"), conduit.UserPatch{Bio: &bio, Image: &img}); err != nil {
		t.Fatal(err)
	}
	res, _ = view("/profile/writer")
	wantContains(t, res, bio, img)
	res, _ = view("/")
	wantContains(t, res, img)
	kept("writer's profile change", "/profile/fan/favorites")

	// A new username: the old name's page is gone, the new one lists the
	// articles, and the lists show the new name.
	keepAll()
	name := "wordsmith"
	if _, err := a.svc.UpdateUser(ctx, userID(t, a, "writer"), conduit.UserPatch{Username: &name}); err != nil {
		t.Fatal(err)
	}
	if res := anon.get("/profile/writer"); res.StatusCode != http.StatusNotFound {
		t.Errorf("the old name's profile after the rename: %d, want 404", res.StatusCode)
	}
	res, _ = view("/profile/wordsmith")
	wantContains(t, res, "More news", title)
	res, _ = view("/?tag=news")
	wantContains(t, res, `href="/profile/wordsmith"`)
	wantNotContains(t, res, `href="/profile/writer"`)

	// A delete: gone from every list.
	paths[3] = "/profile/wordsmith"
	keepAll()
	if err := a.svc.DeleteArticle(ctx, userID(t, a, "wordsmith"), news); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/?tag=news", "/profile/wordsmith"} {
		res, _ := view(p)
		wantNotContains(t, res, "News post")
	}
}

// waitSynced waits until svc may use its list caches (conduit.Service's
// ListsStamp): with Redis, not while a bucket key a write just touched is
// being tracked again, when pages are neither kept nor served.
func waitSynced(t *testing.T, svc *conduit.Service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := svc.ListsStamp(context.Background()); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the node never could use its list caches")
		}
		time.Sleep(time.Millisecond)
	}
}

func userID(t *testing.T, s *site, username string) int64 {
	t.Helper()
	p, err := s.svc.Profile(context.Background(), 0, username)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}
