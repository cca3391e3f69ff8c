package conduit_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
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
