package web

import (
	"net/http"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// With Redis, a page one node built is served by the other from Redis,
// without a list read; after a write through either node neither serves
// the old page, and the page rebuilt by one is served to the other.
func TestSharedPagesAcrossNodes(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	url := storetest.NewMigratedPostgresDatabase(t)
	var sites [2]*site
	var stores [2]*storetest.ListCounter
	for i := range sites {
		stores[i] = &storetest.ListCounter{Store: storetest.Node(t, url)}
		// A long lease: no Redis faults here, and a loaded machine's slow
		// heartbeat would make a node bypass the tiers and read again.
		c := rs.Cache(t, cache.RedisOptions{Timeout: time.Second, Lease: time.Minute})
		sites[i] = newSiteOn(t, conduit.NewService(stores[i], c, auth.Bcrypt{Cost: 4}, conduit.WithListTTL(time.Minute)), Options{})
	}
	writer := sites[0].browser().signUp("writer")
	news := writer.publish("News post", "news")
	fan := sites[1].browser().signUp("fan")

	// view returns node i's anonymous tag page, how many list reads
	// reached its store, and whether its page cache served it (from its
	// memory or from Redis: not built).
	view := func(i int) (response, int64, bool) {
		t.Helper()
		waitSynced(t, sites[i].svc)
		n := stores[i].Lists()
		h0, _ := sites[i].handler.(*Site).PageCacheStats()
		res := sites[i].browser().get("/?tag=news")
		wantStatus(t, res, http.StatusOK)
		h1, _ := sites[i].handler.(*Site).PageCacheStats()
		return res, stores[i].Lists() - n, h1 > h0
	}
	if _, n, _ := view(0); n != 1 {
		t.Fatalf("A built the page with %d list reads", n)
	}
	res, n, served := view(1)
	wantContains(t, res, "News post")
	if n != 0 || !served {
		t.Errorf("B read the list %d times for the page A kept (want 0), served from the page cache: %v", n, served)
	}

	count := func(n string) string {
		return n + `<span class="visually-hidden"> favorites: favorite “News post”`
	}
	// reads: the other node's list reads after the write (a favorite
	// changes only a count, which is filled in when a page is served).
	writes := []struct {
		node  int
		name  string
		write func()
		shows string
		reads int64
	}{
		{1, "a favorite through B", func() {
			if res := fan.post("/article/"+news+"/favorite", nil); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("favorite: %d", res.StatusCode)
			}
		}, count("1"), 0},
		{0, "a new article through A", func() { writer.publish("More news", "news") }, "More news", 1},
		{0, "an unfavorite through A", func() {
			if res := fan.post("/article/"+news+"/unfavorite", nil); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("unfavorite: %d", res.StatusCode)
			}
		}, count("0"), 0},
	}
	for _, w := range writes {
		view(0)
		view(1) // kept on both nodes and in Redis
		w.write()
		res, n, _ := view(1 - w.node)
		wantContains(t, res, w.shows)
		if n != w.reads {
			t.Errorf("%s: the other node read the list %d times, want %d", w.name, n, w.reads)
		}
		res, n, served := view(w.node)
		wantContains(t, res, w.shows)
		if n != 0 || !served {
			t.Errorf("%s: the writing node read the list %d times (want 0: the other kept the page), served from the page cache: %v", w.name, n, served)
		}
	}
}
