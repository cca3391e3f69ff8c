package conduit_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// countLoads records the favorites-count reads that reach the database:
// one per FavoritesCount, and the ids of each FavoritesCounts.
type countLoads struct {
	conduit.Store
	mu     sync.Mutex
	single int
	many   [][]int64
}

func (s *countLoads) FavoritesCount(ctx context.Context, articleID int64) (int, error) {
	s.mu.Lock()
	s.single++
	s.mu.Unlock()
	return s.Store.FavoritesCount(ctx, articleID)
}

func (s *countLoads) FavoritesCounts(ctx context.Context, ids []int64) (map[int64]int, error) {
	s.mu.Lock()
	s.many = append(s.many, slices.Sorted(slices.Values(ids)))
	s.mu.Unlock()
	return s.Store.FavoritesCounts(ctx, ids)
}

// take returns the loads since the last take and forgets them.
func (s *countLoads) take() (single int, many [][]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	single, many = s.single, s.many
	s.single, s.many = 0, nil
	return single, many
}

// A kept page whose counts are all cold reads them in one statement, and
// after a favorite only that article's count, which it serves new.
func TestKeptPageCountsInOneStatement(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &countLoads{Store: db}
		svc := conduit.NewService(st, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
		ann, bob := mustRegister(t, svc, "ann"), mustRegister(t, svc, "bob")
		var ids []int64
		for _, title := range []string{"One", "Two", "Three", "Four", "Five"} {
			ids = append(ids, mustCreate(t, svc, ann.ID, title).ID)
		}
		slices.Sort(ids)
		global := conduit.ArticleFilter{}
		read := func() conduit.ArticlePage {
			t.Helper()
			p, err := svc.Articles(ctx, 0, global)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		read() // a miss: the page comes from the store, counts and all
		st.take()
		read() // the kept page: its five counts are cold
		if single, many := st.take(); single != 0 || !slices.EqualFunc(many, [][]int64{ids}, slices.Equal) {
			t.Fatalf("serving the kept page: %d single loads and batches %v; want one batch of %v", single, many, ids)
		}
		read()
		if single, many := st.take(); single != 0 || len(many) != 0 {
			t.Fatalf("with the counts cached: %d single loads and batches %v; want none", single, many)
		}

		liked := ids[2]
		var slug string
		for _, a := range read().Articles {
			if a.ID == liked {
				slug = a.Slug
			}
		}
		if _, err := svc.Favorite(ctx, bob.ID, slug); err != nil {
			t.Fatal(err)
		}
		st.take()
		p := read()
		if single, many := st.take(); single != 0 || !slices.EqualFunc(many, [][]int64{{liked}}, slices.Equal) {
			t.Fatalf("after a favorite: %d single loads and batches %v; want one batch of [%d]", single, many, liked)
		}
		for _, a := range p.Articles {
			if want := map[bool]int{true: 1}[a.ID == liked]; a.FavoritesCount != want {
				t.Errorf("after a favorite: %s count %d, want %d", a.Slug, a.FavoritesCount, want)
			}
		}

		// The site fills in its kept pages the same way.
		counts, err := svc.FavoritesCounts(ctx, []int64{liked, ids[0]})
		if single, many := st.take(); err != nil || !slices.Equal(counts, []int{1, 0}) || single != 0 || len(many) != 0 {
			t.Fatalf("FavoritesCounts = %v, %v after %d single loads and batches %v; want [1 0] from the cache", counts, err, single, many)
		}
	})
}

// On Redis too: the counts one node misses are one statement, and what it
// stored serves another node.
func TestFavoritesCountsRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &countLoads{Store: db}
		opts := cache.RedisOptions{Prefix: "counts-" + t.Name() + ":"}
		a := conduit.NewService(st, rs.Cache(t, opts), auth.Bcrypt{Cost: 4})
		b := conduit.NewService(st, rs.Cache(t, opts), auth.Bcrypt{Cost: 4})
		ann, bob := mustRegister(t, a, "ann"), mustRegister(t, a, "bob")
		one, two := mustCreate(t, a, ann.ID, "One"), mustCreate(t, a, ann.ID, "Two")
		if _, err := a.Favorite(ctx, bob.ID, two.Slug); err != nil {
			t.Fatal(err)
		}
		st.take()
		ids := []int64{one.ID, two.ID}
		counts, err := a.FavoritesCounts(ctx, ids)
		single, many := st.take()
		if err != nil || !slices.Equal(counts, []int{0, 1}) || single != 0 || !slices.EqualFunc(many, [][]int64{slices.Sorted(slices.Values(ids))}, slices.Equal) {
			t.Fatalf("node A: FavoritesCounts = %v, %v after %d single loads and batches %v; want [0 1] in one batch", counts, err, single, many)
		}
		counts, err = b.FavoritesCounts(ctx, ids)
		if single, many := st.take(); err != nil || !slices.Equal(counts, []int{0, 1}) || single != 0 || len(many) != 0 {
			t.Fatalf("node B: FavoritesCounts = %v, %v after %d single loads and batches %v; want [0 1] from Redis", counts, err, single, many)
		}
		if _, err := b.Unfavorite(ctx, bob.ID, two.Slug); err != nil {
			t.Fatal(err)
		}
		if counts, err := a.FavoritesCounts(ctx, ids); err != nil || !slices.Equal(counts, []int{0, 0}) {
			t.Fatalf("node A after B's unfavorite: FavoritesCounts = %v, %v; want [0 0]", counts, err)
		}
	})
}
