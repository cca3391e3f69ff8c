package store_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A long discussion is read in pages, newest first, each page found by
// the keyset bound of the one before: every comment exactly once, with
// the article's count on every page.
func TestCommentPages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n, limit = 1050, 100
		storetest.Discussion(t, db, n, 11, 40)
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Fatal(err) // comment_counts is refreshed by the bulk load
		}
		next, seen := int64(0), 0
		for pages := 1; ; pages++ {
			page, err := db.Comments(ctx, 0, 1, conduit.CommentFilter{Limit: limit, Before: next})
			if err != nil {
				t.Fatal(err)
			}
			if page.Count != n {
				t.Fatalf("page %d: count %d, want %d", pages, page.Count, n)
			}
			for _, c := range page.Comments {
				if i := n - 1 - seen; c.ID != int64(10*i+1) || !strings.HasPrefix(c.Body, fmt.Sprintf("comment %d ", i)) {
					t.Fatalf("page %d: comment %d (%.12q), want comment %d", pages, c.ID, c.Body, i)
				}
				seen++
			}
			next = page.Next
			if next == 0 {
				if pages != (n+limit-1)/limit || seen != n {
					t.Fatalf("%d comments in %d pages, want %d in %d", seen, pages, n, (n+limit-1)/limit)
				}
				break
			}
			if len(page.Comments) != limit || next != page.Comments[limit-1].ID {
				t.Fatalf("page %d: %d comments, next %d", pages, len(page.Comments), next)
			}
		}
	})
}

// A page of comments reads its own rows only, however many the article
// has and however deep the page: the plan walks comments_article_idx
// backwards from the bound and stops at the limit (no sort of all the
// article's comments). On PostgreSQL the rows actually read are counted.
func TestCommentPageReadsBoundedRows(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n, limit = 1200, 20
		storetest.Discussion(t, db, n, 12, 40)
		for _, before := range []int64{0, 5 * n} { // the newest page, and one in the middle
			q, args := db.CommentPageQuery(1, before, limit)
			plan, all := planOf(t, db, q, args)
			switch db.Dialect() {
			case "sqlite":
				want := "USING INDEX comments_article_idx (article_id=?)"
				if before > 0 {
					want = "USING INDEX comments_article_idx (article_id=? AND id<?)"
				}
				if !strings.Contains(all, want) || strings.Contains(all, "TEMP B-TREE") {
					t.Errorf("before=%d: plan does not walk comments_article_idx in order:\n%s", before, all)
				}
			case "postgres":
				for _, p := range plan {
					if strings.Contains(p.Detail, "comments") && (p.Rows+p.Removed > limit+1) {
						t.Errorf("before=%d: %q read %d rows (%d filtered out), want at most %d", before, p.Detail, p.Rows+p.Removed, p.Removed, limit+1)
					}
				}
				if !strings.Contains(all, "comments_article_idx") {
					t.Errorf("before=%d: plan does not use comments_article_idx:\n%s", before, all)
				}
			}
		}
	})
}

// The bounds on comments hold: per article and per author on one article,
// decided inside the write; deleting a comment makes room again, and the
// count stays exact.
func TestCommentLimits(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		author, ann, bob := mkUser(t, db, "author"), mkUser(t, db, "ann"), mkUser(t, db, "bob")
		a := mkArticle(t, db, author, "small-talk")
		max := conduit.CommentLimits{PerArticle: 5, PerAuthor: 2}
		add := func(u conduit.User) (conduit.Comment, error) {
			ts := now()
			c := conduit.Comment{ArticleID: a.ID, Body: "hi from " + u.Username, CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: u.ID}}
			return c, db.CreateComment(ctx, &c, max)
		}
		wantLimit := func(err error, name string) {
			t.Helper()
			var le *conduit.LimitError
			if !errors.As(err, &le) || le.Name != name {
				t.Fatalf("got %v, want a LimitError %q", err, name)
			}
		}
		count := func() int {
			t.Helper()
			page, err := db.Comments(ctx, 0, a.ID, conduit.CommentFilter{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if page.Count != len(page.Comments) {
				t.Fatalf("count %d, but %d comments", page.Count, len(page.Comments))
			}
			return page.Count
		}
		first, err := add(ann)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := add(ann); err != nil {
			t.Fatal(err)
		}
		_, err = add(ann)
		wantLimit(err, "per author on one article")
		for range 2 {
			if _, err := add(bob); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := add(author); err != nil {
			t.Fatal(err)
		}
		_, err = add(author)
		wantLimit(err, "per article")
		if n := count(); n != 5 {
			t.Fatalf("%d comments after refusals, want 5", n)
		}

		if err := db.DeleteComment(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := add(ann); err != nil {
			t.Fatalf("a deleted comment did not make room: %v", err)
		}
		if n := count(); n != 5 {
			t.Fatalf("%d comments, want 5", n)
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Concurrent comments hold the bounds exactly (on PostgreSQL the
// transaction is pipelined, createCommentPipelined): of many comments sent
// at once by two authors on one article, each author gets PerAuthor, and
// the article's counter takes back the move of every refused one.
func TestCommentLimitsConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		author, ann, bob := mkUser(t, db, "author"), mkUser(t, db, "ann"), mkUser(t, db, "bob")
		a := mkArticle(t, db, author, "busy")
		max := conduit.CommentLimits{PerArticle: 100, PerAuthor: 3}
		const each = 12
		var wg sync.WaitGroup
		var mu sync.Mutex
		added := map[int64]int{}
		for _, u := range []conduit.User{ann, bob} {
			for range each {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ts := now()
					c := conduit.Comment{ArticleID: a.ID, Body: "hi", CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: u.ID}}
					err := db.CreateComment(ctx, &c, max)
					var le *conduit.LimitError
					switch {
					case err == nil:
						mu.Lock()
						added[u.ID]++
						mu.Unlock()
					case !errors.As(err, &le) || le.Name != "per author on one article":
						t.Errorf("comment by %s: %v", u.Username, err)
					}
				}()
			}
		}
		wg.Wait()
		if added[ann.ID] != max.PerAuthor || added[bob.ID] != max.PerAuthor {
			t.Errorf("added %d by ann, %d by bob; want %d each", added[ann.ID], added[bob.ID], max.PerAuthor)
		}
		page, err := db.Comments(ctx, 0, a.ID, conduit.CommentFilter{Limit: 100})
		if err != nil || page.Count != 2*max.PerAuthor || len(page.Comments) != 2*max.PerAuthor {
			t.Errorf("count %d, %d comments, %v; want %d", page.Count, len(page.Comments), err, 2*max.PerAuthor)
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Error(err)
		}
	})
}
