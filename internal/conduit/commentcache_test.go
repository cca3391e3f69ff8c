package conduit_test

import (
	"context"
	"slices"
	"strings"
	"sync"
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

// commentCounter counts the comment pages read from the store.
type commentCounter struct {
	conduit.Store
	n atomic.Int64
}

func (s *commentCounter) Comments(ctx context.Context, viewerID, articleID int64, f conduit.CommentFilter) (conduit.CommentPage, error) {
	s.n.Add(1)
	return s.Store.Comments(ctx, viewerID, articleID, f)
}

// An anonymous reader's first comments are read from the cache: once from
// the store for any first page size, with each author's current profile,
// and each new or deleted comment on the next read. A signed-in reader's
// come from the store, with the reader's own following marks. A page too
// long to keep is read from the store each time.
func TestCommentsCached(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &commentCounter{Store: db}
		svc := conduit.NewService(st, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		ann := mustRegister(t, svc, "ann")
		bob := mustRegister(t, svc, "bob")
		cat := mustRegister(t, svc, "cat")
		a := mustCreate(t, svc, ann.ID, "Talked about")
		first, err := svc.AddComment(ctx, bob.ID, a.Slug, "first")
		if err != nil {
			t.Fatal(err)
		}

		read := func(viewer int64, f conduit.CommentFilter) conduit.CommentPage {
			t.Helper()
			p, err := svc.Comments(ctx, viewer, a.Slug, f)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		bodies := func(p conduit.CommentPage) string {
			var b []string
			for _, c := range p.Comments {
				b = append(b, c.Body)
			}
			return strings.Join(b, ",")
		}
		read(0, conduit.CommentFilter{})
		n := st.n.Load()
		if p := read(0, conduit.CommentFilter{Limit: 20}); bodies(p) != "first" || p.Count != 1 || p.Next != 0 ||
			p.Comments[0].Author.Username != "bob" || st.n.Load() != n {
			t.Fatalf("second read: %q (%d, next %d), %d store reads", bodies(p), p.Count, p.Next, st.n.Load()-n)
		}

		// Profiles are current; signed-in readers read the store, with
		// their own marks.
		if _, err := svc.UpdateUser(ctx, bob.ID, conduit.UserPatch{Image: ptr("https://example.com/bob.png")}); err != nil {
			t.Fatal(err)
		}
		if p := read(0, conduit.CommentFilter{}); p.Comments[0].Author.Image != "https://example.com/bob.png" {
			t.Errorf("after bob's profile change the comment shows image %q", p.Comments[0].Author.Image)
		}
		if st.n.Load() != n {
			t.Errorf("%d store reads for pages the cache holds", st.n.Load()-n)
		}
		if _, err := svc.Follow(ctx, cat.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if p := read(cat.ID, conduit.CommentFilter{}); !p.Comments[0].Author.Following || st.n.Load() != n+1 {
			t.Errorf("cat follows bob: the comment says following %v; %d store reads (want 1)", p.Comments[0].Author.Following, st.n.Load()-n)
		}
		for _, v := range []int64{0, ann.ID} {
			if p := read(v, conduit.CommentFilter{}); p.Comments[0].Author.Following {
				t.Errorf("viewer %d sees cat's follow", v)
			}
		}

		// Writes show on the next read; a shorter first page is cut from
		// the kept one, and its cursor leads on.
		for _, body := range []string{"second", "third"} {
			if _, err := svc.AddComment(ctx, cat.ID, a.Slug, body); err != nil {
				t.Fatal(err)
			}
		}
		if p := read(0, conduit.CommentFilter{}); bodies(p) != "third,second,first" || p.Count != 3 {
			t.Fatalf("after two comments: %q (%d)", bodies(p), p.Count)
		}
		p := read(0, conduit.CommentFilter{Limit: 2})
		if bodies(p) != "third,second" || p.Next != p.Comments[1].ID {
			t.Fatalf("first two: %q, next %d", bodies(p), p.Next)
		}
		if rest := read(0, conduit.CommentFilter{Limit: 2, Before: p.Next}); bodies(rest) != "first" || rest.Next != 0 {
			t.Errorf("after the cursor: %q, next %d", bodies(rest), rest.Next)
		}
		if err := svc.DeleteComment(ctx, bob.ID, a.Slug, first.ID); err != nil {
			t.Fatal(err)
		}
		if p := read(0, conduit.CommentFilter{}); bodies(p) != "third,second" || p.Count != 2 {
			t.Fatalf("after the delete: %q (%d)", bodies(p), p.Count)
		}

		// Too long to keep: read from the store, right, every time.
		long := strings.Repeat("x", conduit.MaxComment)
		for range 8 {
			if _, err := svc.AddComment(ctx, ann.ID, a.Slug, long); err != nil {
				t.Fatal(err)
			}
		}
		read(0, conduit.CommentFilter{})
		n = st.n.Load()
		if p := read(0, conduit.CommentFilter{}); p.Count != 10 || len(p.Comments) != 10 || st.n.Load() != n+1 {
			t.Errorf("long page: %d of %d comments, %d store reads (want 1: not kept)", len(p.Comments), p.Count, st.n.Load()-n)
		}
	})
}

// userLoads records the account and profile reads that reach the store:
// the ids of each UsersByID batch, and single reads.
type userLoads struct {
	conduit.Store
	mu      sync.Mutex
	batches [][]int64
	single  int
}

func (s *userLoads) UsersByID(ctx context.Context, ids []int64, now time.Time) (map[int64]conduit.User, map[int64][]string, error) {
	s.mu.Lock()
	s.batches = append(s.batches, slices.Sorted(slices.Values(ids)))
	s.mu.Unlock()
	return s.Store.UsersByID(ctx, ids, now)
}

func (s *userLoads) UserByID(ctx context.Context, id int64) (conduit.User, error) {
	s.mu.Lock()
	s.single++
	s.mu.Unlock()
	return s.Store.UserByID(ctx, id)
}

func (s *userLoads) ProfilesByID(ctx context.Context, ids []int64) (map[int64]conduit.Profile, error) {
	s.mu.Lock()
	s.single += len(ids)
	s.mu.Unlock()
	return s.Store.ProfilesByID(ctx, ids)
}

// take returns the loads since the last take and forgets them.
func (s *userLoads) take() (batches [][]int64, single int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	batches, single = s.batches, s.single
	s.batches, s.single = nil, 0
	return batches, single
}

// The authors of an anonymous reader's comments whose accounts the cache
// misses are loaded in one statement and kept: the next read of the page
// loads none, and a profile change loads that author alone, new. Before,
// they were loaded on every read (docs/stage5.md, ninth round).
func TestCommentAuthorsKept(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		writer := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		ann := mustRegister(t, writer, "ann")
		bob := mustRegister(t, writer, "bob")
		cat := mustRegister(t, writer, "cat")
		a := mustCreate(t, writer, ann.ID, "Talked about")
		for _, c := range []struct {
			id   int64
			body string
		}{{bob.ID, "first"}, {cat.ID, "second"}, {bob.ID, "third"}} {
			if _, err := writer.AddComment(ctx, c.id, a.Slug, c.body); err != nil {
				t.Fatal(err)
			}
		}
		// A reader whose cache holds none of the authors.
		st := &userLoads{Store: db}
		svc := conduit.NewService(st, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		read := func() []string {
			t.Helper()
			p, err := svc.Comments(ctx, 0, a.Slug, conduit.CommentFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, c := range p.Comments {
				out = append(out, c.Body+":"+c.Author.Username+c.Author.Image)
			}
			return out
		}
		want := []string{"third:bob", "second:cat", "first:bob"}
		if got := read(); !slices.Equal(got, want) {
			t.Fatalf("first read: %v, want %v", got, want)
		}
		authors := slices.Sorted(slices.Values([]int64{bob.ID, cat.ID}))
		if batches, single := st.take(); single != 0 || !slices.EqualFunc(batches, [][]int64{authors}, slices.Equal) {
			t.Fatalf("first read: batches %v and %d single loads; want one batch of %v", batches, single, authors)
		}
		if got := read(); !slices.Equal(got, want) {
			t.Fatalf("second read: %v, want %v", got, want)
		}
		if batches, single := st.take(); single != 0 || len(batches) != 0 {
			t.Fatalf("second read: batches %v and %d single loads; want none (the authors kept)", batches, single)
		}
		if _, err := svc.UpdateUser(ctx, cat.ID, conduit.UserPatch{Image: ptr("https://example.com/cat.png")}); err != nil {
			t.Fatal(err)
		}
		st.take()
		want[1] = "second:cathttps://example.com/cat.png"
		if got := read(); !slices.Equal(got, want) {
			t.Fatalf("after cat's profile change: %v, want %v", got, want)
		}
		if batches, single := st.take(); single != 0 || !slices.EqualFunc(batches, [][]int64{{cat.ID}}, slices.Equal) {
			t.Fatalf("after cat's profile change: batches %v and %d single loads; want one batch of cat alone", batches, single)
		}
	})
}

// On Redis, what one node loaded serves the others: a second node reads
// the page's authors without a load. The kept accounts are those the token
// check reads (with their revocations).
func TestCommentAuthorsKeptRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &userLoads{Store: db}
		// A long lease: a loaded machine's slow heartbeat would make node
		// A bypass the tier, load and keep nothing.
		opts := cache.RedisOptions{Prefix: "authors-" + t.Name() + ":", Timeout: time.Second, Lease: time.Minute}
		writer := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		a := conduit.NewService(st, rs.Cache(t, opts), auth.Bcrypt{Cost: 4})
		b := conduit.NewService(st, rs.Cache(t, opts), auth.Bcrypt{Cost: 4})
		ann, bob := mustRegister(t, writer, "ann"), mustRegister(t, writer, "bob")
		art := mustCreate(t, writer, ann.ID, "Talked about")
		if _, err := writer.AddComment(ctx, bob.ID, art.Slug, "hello"); err != nil {
			t.Fatal(err)
		}
		st.take()
		for i, node := range []*conduit.Service{a, b} {
			p, err := node.Comments(ctx, 0, art.Slug, conduit.CommentFilter{})
			if err != nil || len(p.Comments) != 1 || p.Comments[0].Author.Username != "bob" {
				t.Fatalf("node %d: %+v, %v", i, p, err)
			}
			batches, single := st.take()
			if want := [][]int64{{bob.ID}}; i == 1 {
				want = nil
				if single != 0 || len(batches) != 0 {
					t.Fatalf("node B: batches %v and %d single loads; want none (A kept bob's account in Redis)", batches, single)
				}
			} else if single != 0 || !slices.EqualFunc(batches, want, slices.Equal) {
				t.Fatalf("node A: batches %v and %d single loads; want %v", batches, single, want)
			}
		}
	})
}

// UsersByID returns the users that exist, each with its unexpired single
// revocations, as UserByID and RevokedTokens do one by one.
func TestUsersByID(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		ann, bob := mustRegister(t, svc, "ann"), mustRegister(t, svc, "bob")
		now := time.Now()
		for _, r := range []struct {
			token   string
			expires time.Time
		}{{"b2", now.Add(time.Hour)}, {"a1", now.Add(time.Hour)}, {"old", now.Add(-time.Minute)}} {
			if err := db.RevokeToken(ctx, bob.ID, r.token, r.expires); err != nil {
				t.Fatal(err)
			}
		}
		users, revoked, err := db.UsersByID(ctx, []int64{ann.ID, bob.ID, bob.ID + 1000}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 || users[ann.ID].Username != "ann" || users[bob.ID].Username != "bob" || users[bob.ID].Email == "" {
			t.Fatalf("users: %+v", users)
		}
		one, err := db.UserByID(ctx, bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		one.PasswordHash = ""
		if got := users[bob.ID]; got.TokenGen != one.TokenGen || !got.CreatedAt.Equal(one.CreatedAt) || got.Bio != one.Bio || got.PasswordHash != "" {
			t.Errorf("bob by UsersByID %+v, by UserByID %+v", got, one)
		}
		single, err := db.RevokedTokens(ctx, bob.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(revoked[bob.ID], []string{"a1", "b2"}) || !slices.Equal(revoked[bob.ID], single) || len(revoked[ann.ID]) != 0 {
			t.Errorf("revoked: %v; RevokedTokens says %v for bob", revoked, single)
		}
	})
}
