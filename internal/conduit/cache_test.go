package conduit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func ptr[T any](v T) *T { return &v }

// statsCache is a conduit.Cache that counts its hits.
type statsCache interface {
	conduit.Cache
	Stats() (hits, misses uint64)
}

// mapCache is a plain map without the Memory cache's tombstones. Those hide
// a missing invalidation for a moment after any write to the same key, so
// only a cache without them proves that every write invalidates.
type mapCache struct {
	mu           sync.Mutex
	m            map[string][]byte
	hits, misses uint64
}

func (c *mapCache) Get(_ context.Context, key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if ok {
		c.hits++
	} else {
		c.misses++
	}
	return v, ok
}

func (c *mapCache) Set(_ context.Context, key string, value []byte, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = value
}

func (c *mapCache) Delete(_ context.Context, keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.m, k)
	}
}

func (c *mapCache) Stats() (uint64, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// caches are the caches the service is tested with.
var caches = []struct {
	name string
	new  func(t *testing.T) statsCache
}{
	{"memory", func(*testing.T) statsCache { return cache.NewMemory(1000) }},
	{"no tombstones", func(*testing.T) statsCache { return &mapCache{m: map[string][]byte{}} }},
	// A generous call timeout and lease: these tests count hits and loads,
	// and a 10 ms call that times out on a loaded machine is a miss, as is
	// every read after a round trip of over 250 ms (the heartbeat's probe
	// at the default 500 ms lease) or an invalidation given up after the
	// lease: the node bypasses the cache and starts a new generation. The
	// fallback to the database is tested in internal/cache and the
	// stage-5 drill.
	{"redis", func(t *testing.T) statsCache {
		return redistest.Start(t).Cache(t, cache.RedisOptions{Timeout: time.Second, Lease: time.Minute})
	}},
}

// eachService runs f once per cache and backend, each with a fresh database.
func eachService(t *testing.T, f func(t *testing.T, svc *conduit.Service, c statsCache)) {
	for _, c := range caches {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				mem := c.new(t)
				f(t, conduit.NewService(db, mem, auth.Bcrypt{Cost: 4}), mem)
			})
		})
	}
}

func mustRegister(t *testing.T, svc *conduit.Service, name string) conduit.User {
	t.Helper()
	u, err := svc.Register(context.Background(), conduit.NewUser{Username: name, Email: name + "@example.com", Password: "password1"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustCreate(t *testing.T, svc *conduit.Service, author int64, title string, tags ...string) conduit.Article {
	t.Helper()
	a, err := svc.CreateArticle(context.Background(), author, conduit.NewArticle{Title: title, Description: "d", Body: "b", Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Every cached read is served from the cache the second time, and every
// write that affects it is visible on the very next read.
func TestCacheWriteVisibleOnNextRead(t *testing.T) {
	t.Parallel()
	eachService(t, func(t *testing.T, svc *conduit.Service, mem statsCache) {
		ctx := context.Background()
		alice := mustRegister(t, svc, "alice")
		bob := mustRegister(t, svc, "bob")
		art := mustCreate(t, svc, alice.ID, "Cached", "go")

		// hits reports how many cache hits fn produced.
		hits := func(fn func()) uint64 {
			before, _ := mem.Stats()
			fn()
			after, _ := mem.Stats()
			return after - before
		}
		profile := func(name string) conduit.Profile {
			t.Helper()
			p, err := svc.Profile(ctx, 0, name)
			if err != nil {
				t.Fatalf("profile %q: %v", name, err)
			}
			return p
		}
		article := func(slug string) conduit.Article {
			t.Helper()
			a, err := svc.Article(ctx, bob.ID, slug)
			if err != nil {
				t.Fatalf("article %q: %v", slug, err)
			}
			return a
		}
		tags := func() []string {
			t.Helper()
			tt, err := svc.Tags(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return tt
		}

		t.Run("reads are cached", func(t *testing.T) {
			profile("alice")
			article(art.Slug)
			tags()
			if n := hits(func() { profile("alice"); article(art.Slug); tags() }); n < 3 {
				t.Errorf("second reads made %d cache hits, want at least 3", n)
			}
		})

		t.Run("profile after bio change", func(t *testing.T) {
			profile("alice")
			if _, err := svc.UpdateUser(ctx, alice.ID, conduit.UserPatch{Bio: ptr("new bio"), Image: ptr("https://img.example/a.png")}); err != nil {
				t.Fatal(err)
			}
			if p := profile("alice"); p.Bio != "new bio" || p.Image != "https://img.example/a.png" {
				t.Errorf("profile after update = %+v", p)
			}
			if a := article(art.Slug); a.Author.Bio != "new bio" {
				t.Errorf("article author after update = %+v", a.Author)
			}
		})

		t.Run("profile after username change", func(t *testing.T) {
			profile("alice")
			profile("ALICE")
			article(art.Slug)
			if _, err := svc.UpdateUser(ctx, alice.ID, conduit.UserPatch{Username: ptr("alicia")}); err != nil {
				t.Fatal(err)
			}
			for _, old := range []string{"alice", "ALICE", "Alice"} {
				if _, err := svc.Profile(ctx, 0, old); !errors.Is(err, conduit.ErrNotFound) {
					t.Errorf("profile %q after rename: err = %v, want ErrNotFound", old, err)
				}
			}
			if p := profile("alicia"); p.ID != alice.ID {
				t.Errorf("profile under new name = %+v", p)
			}
			if a := article(art.Slug); a.Author.Username != "alicia" {
				t.Errorf("article author after rename = %q", a.Author.Username)
			}
			// The old name can be taken, and then names the new user.
			carol, err := svc.Register(ctx, conduit.NewUser{Username: "alice", Email: "carol@example.com", Password: "password1"})
			if err != nil {
				t.Fatal(err)
			}
			if p := profile("alice"); p.ID != carol.ID {
				t.Errorf("profile 'alice' = user %d, want the new user %d", p.ID, carol.ID)
			}
		})

		t.Run("article after update", func(t *testing.T) {
			article(art.Slug)
			if _, err := svc.UpdateArticle(ctx, alice.ID, art.Slug, conduit.ArticlePatch{Body: ptr("edited"), Tags: &[]string{"go", "edited"}}); err != nil {
				t.Fatal(err)
			}
			if a := article(art.Slug); a.Body != "edited" || !slices.Equal(a.Tags, []string{"edited", "go"}) {
				t.Errorf("article after update = %q %v", a.Body, a.Tags)
			}
		})

		t.Run("article after title change", func(t *testing.T) {
			article(art.Slug)
			upd, err := svc.UpdateArticle(ctx, alice.ID, art.Slug, conduit.ArticlePatch{Title: ptr("Renamed")})
			if err != nil {
				t.Fatal(err)
			}
			// The old slug still names the article (slug history), and
			// answers what it is now, not a cached copy from before.
			if a := article(art.Slug); a.ID != art.ID || a.Title != "Renamed" || a.Slug != upd.Slug {
				t.Errorf("old slug after rename = %d %q %q, want %d Renamed %q", a.ID, a.Title, a.Slug, art.ID, upd.Slug)
			}
			if a := article(upd.Slug); a.Title != "Renamed" {
				t.Errorf("article under new slug = %+v", a)
			}
			// A new article cannot take the old slug while the renamed one
			// exists.
			again := mustCreate(t, svc, bob.ID, "Cached")
			if again.Slug == art.Slug {
				t.Fatalf("new article took the old slug %q", art.Slug)
			}
			art = upd
		})

		t.Run("article after favorite", func(t *testing.T) {
			for i, on := range []bool{true, false} {
				article(art.Slug)
				setFavorite(t, svc, bob.ID, art.Slug, on)
				a := article(art.Slug)
				if a.FavoritesCount != 1-i || a.Favorited != on {
					t.Errorf("after favorite=%v: count %d favorited %v", on, a.FavoritesCount, a.Favorited)
				}
				anon, _ := svc.Article(ctx, 0, art.Slug)
				if anon.FavoritesCount != 1-i || anon.Favorited {
					t.Errorf("anonymous after favorite=%v: count %d favorited %v", on, anon.FavoritesCount, anon.Favorited)
				}
			}
		})

		t.Run("tags after create, update and delete", func(t *testing.T) {
			tags()
			extra := mustCreate(t, svc, bob.ID, "Tagged", "fresh")
			if got := tags(); !slices.Contains(got, "fresh") {
				t.Errorf("tags after create = %v", got)
			}
			if _, err := svc.UpdateArticle(ctx, bob.ID, extra.Slug, conduit.ArticlePatch{Tags: &[]string{"fresher"}}); err != nil {
				t.Fatal(err)
			}
			if got := tags(); slices.Contains(got, "fresh") || !slices.Contains(got, "fresher") {
				t.Errorf("tags after update = %v", got)
			}
			if err := svc.DeleteArticle(ctx, bob.ID, extra.Slug); err != nil {
				t.Fatal(err)
			}
			if got := tags(); slices.Contains(got, "fresher") {
				t.Errorf("tags after delete = %v", got)
			}
		})

		t.Run("article after delete", func(t *testing.T) {
			article(art.Slug)
			if err := svc.DeleteArticle(ctx, alice.ID, art.Slug); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Article(ctx, 0, art.Slug); !errors.Is(err, conduit.ErrNotFound) {
				t.Errorf("deleted article: err = %v, want ErrNotFound", err)
			}
			if _, err := svc.Comments(ctx, 0, art.Slug, conduit.CommentFilter{}); !errors.Is(err, conduit.ErrNotFound) {
				t.Errorf("comments of deleted article: err = %v, want ErrNotFound", err)
			}
		})
	})
}

// Authorization is decided on fresh data: a cached article never lets a
// non-author edit or delete, and the author keeps the right after a rename.
func TestOnlyAuthorWrites(t *testing.T) {
	t.Parallel()
	eachService(t, func(t *testing.T, svc *conduit.Service, _ statsCache) {
		ctx := context.Background()
		alice, bob := mustRegister(t, svc, "alice"), mustRegister(t, svc, "bob")
		art := mustCreate(t, svc, alice.ID, "Hers")
		if _, err := svc.UpdateArticle(ctx, bob.ID, art.Slug, conduit.ArticlePatch{Body: ptr("x")}); !errors.Is(err, conduit.ErrForbidden) {
			t.Errorf("bob updates: err = %v", err)
		}
		if err := svc.DeleteArticle(ctx, bob.ID, art.Slug); !errors.Is(err, conduit.ErrForbidden) {
			t.Errorf("bob deletes: err = %v", err)
		}
		if _, err := svc.UpdateUser(ctx, alice.ID, conduit.UserPatch{Username: ptr("alicia")}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.UpdateArticle(ctx, alice.ID, art.Slug, conduit.ArticlePatch{Body: ptr("mine")}); err != nil {
			t.Errorf("renamed author updates: %v", err)
		}
		c, err := svc.AddComment(ctx, bob.ID, art.Slug, "hi")
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteComment(ctx, alice.ID, art.Slug, c.ID); !errors.Is(err, conduit.ErrForbidden) {
			t.Errorf("article author deletes another's comment: err = %v", err)
		}
		if _, err := svc.Follow(ctx, alice.ID, "alicia"); err == nil {
			t.Error("following yourself was allowed")
		}
	})
}

// loadCounter counts the article loads that reach the database.
type loadCounter struct {
	conduit.Store
	mu    sync.Mutex
	loads int
}

func (s *loadCounter) ArticleBySlug(ctx context.Context, viewerID int64, slug string) (conduit.Article, error) {
	s.mu.Lock()
	s.loads++
	s.mu.Unlock()
	return s.Store.ArticleBySlug(ctx, viewerID, slug)
}

func (s *loadCounter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

// A favorite changes the count every reader sees at once, and a stored
// rendering is found by the next reader, but neither throws the cached
// article away; a changed body is never given an older body's rendering.
func TestFavoriteAndRenderingKeepCachedArticle(t *testing.T) {
	t.Parallel()
	for _, c := range caches {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				st := &loadCounter{Store: db}
				svc := conduit.NewService(st, c.new(t), auth.Bcrypt{Cost: 4})
				alice := mustRegister(t, svc, "alice")
				bob := mustRegister(t, svc, "bob")
				art := mustCreate(t, svc, alice.ID, "Kept")
				read := func(viewer int64) conduit.Article {
					t.Helper()
					a, err := svc.Article(ctx, viewer, art.Slug)
					if err != nil {
						t.Fatal(err)
					}
					return a
				}
				read(0)
				loads := st.count()

				for i, on := range []bool{true, false} {
					setFavorite(t, svc, bob.ID, art.Slug, on)
					if a := read(0); a.FavoritesCount != 1-i {
						t.Errorf("anonymous after favorite=%v: count %d, want %d", on, a.FavoritesCount, 1-i)
					}
					if a := read(bob.ID); a.FavoritesCount != 1-i || a.Favorited != on {
						t.Errorf("bob after favorite=%v: count %d favorited %v", on, a.FavoritesCount, a.Favorited)
					}
				}

				a := read(0)
				if html, ok := svc.ArticleHTML(ctx, a, 1); ok {
					t.Fatalf("a rendering before any was stored: %q", html)
				}
				if err := svc.SaveArticleHTML(ctx, a, "<p>b</p>", 1); err != nil {
					t.Fatal(err)
				}
				if html, ok := svc.ArticleHTML(ctx, read(0), 1); !ok || html != "<p>b</p>" {
					t.Errorf("rendering after it was stored: %q, %v", html, ok)
				}
				if _, ok := svc.ArticleHTML(ctx, read(0), 2); ok {
					t.Error("a rendering by generation 1 was given for generation 2")
				}
				if n := st.count() - loads; n != 0 {
					t.Errorf("favorites and a stored rendering made %d article loads, want 0", n)
				}

				if _, err := svc.UpdateArticle(ctx, alice.ID, art.Slug, conduit.ArticlePatch{Body: ptr("changed")}); err != nil {
					t.Fatal(err)
				}
				a = read(0)
				if a.Body != "changed" {
					t.Fatalf("body after update = %q", a.Body)
				}
				if html, ok := svc.ArticleHTML(ctx, a, 1); ok {
					t.Errorf("the old body's rendering was given for the new body: %q", html)
				}
			})
		})
	}
}

// Values cached together do not expire together: each gets the service's
// lifetime (5 minutes, or WithCacheTTL's) less up to a fifth, spread over
// that fifth.
func TestEntryTTLIsSpread(t *testing.T) {
	for _, c := range []struct {
		opts []conduit.Option
		ttl  time.Duration
	}{{nil, 5 * time.Minute}, {[]conduit.Option{conduit.WithCacheTTL(time.Hour)}, time.Hour}} {
		s := conduit.NewService(nil, cache.NewMemory(10), auth.Bcrypt{Cost: 4}, c.opts...)
		seen := map[time.Duration]bool{}
		lo, hi := 2*c.ttl, time.Duration(0)
		for range 1000 {
			d := conduit.EntryTTL(s)
			seen[d/(c.ttl/300)] = true
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < c.ttl*4/5 || hi > c.ttl {
			t.Errorf("ttl %v: lifetimes from %v to %v, want within [%v, %v]", c.ttl, lo, hi, c.ttl*4/5, c.ttl)
		}
		if hi-lo < c.ttl/6 || len(seen) < 40 {
			t.Errorf("ttl %v: lifetimes from %v to %v in %d distinct steps: not spread", c.ttl, lo, hi, len(seen))
		}
	}
}

// setFavorite favorites (on) or unfavorites the article as viewer.
func setFavorite(t *testing.T, svc *conduit.Service, viewer int64, slug string, on bool) {
	t.Helper()
	change := svc.Unfavorite
	if on {
		change = svc.Favorite
	}
	if _, err := change(context.Background(), viewer, slug); err != nil {
		t.Fatal(err)
	}
}
