package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// The list counters (migration 0002) follow creates, tag edits and deletes
// exactly, also when writes run concurrently.
func TestListCounters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		u := conduit.User{Username: "writer", Email: "writer@example.com", PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
		if err := db.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		check := func(wantTotal int, wantTags map[string]int) {
			t.Helper()
			page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Limit: 100})
			if err != nil || page.Count != wantTotal || len(page.Articles) != wantTotal {
				t.Fatalf("global list: count %d, %d rows, err %v; want %d", page.Count, len(page.Articles), err, wantTotal)
			}
			for tag, n := range wantTags {
				page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Tag: tag, Limit: 100})
				if err != nil || page.Count != n || len(page.Articles) != n {
					t.Fatalf("tag %s: count %d, %d rows, err %v; want %d", tag, page.Count, len(page.Articles), err, n)
				}
				if !slices.IsSortedFunc(page.Articles, func(a, b conduit.Article) int { return int(b.ID - a.ID) }) {
					t.Errorf("tag %s: not newest first", tag)
				}
			}
			tags, err := db.Tags(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for tag, n := range wantTags {
				if n > 0 {
					want = append(want, tag)
				}
			}
			slices.SortFunc(want, func(a, b string) int {
				if wantTags[a] != wantTags[b] {
					return wantTags[b] - wantTags[a]
				}
				return map[bool]int{true: -1, false: 1}[a < b]
			})
			if !slices.Equal(tags, want) {
				t.Errorf("tags = %v, want %v (most used first)", tags, want)
			}
			if err := db.CheckIntegrity(ctx); err != nil {
				t.Error(err)
			}
		}
		check(0, map[string]int{})

		// Concurrent creates keep the counters exact.
		var wg sync.WaitGroup
		errs := make(chan error, 12)
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tags := []string{"go"}
				if i%3 == 0 {
					tags = append(tags, "sql")
				}
				a := conduit.Article{Slug: fmt.Sprintf("a-%d", i), Title: "t", Description: "d", Body: "b",
					Tags: tags, CreatedAt: now, UpdatedAt: now, Author: conduit.Profile{ID: u.ID}}
				errs <- db.CreateArticle(ctx, &a)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		check(12, map[string]int{"go": 12, "sql": 4})

		// Retag one article, delete another.
		a, err := db.ArticleBySlug(ctx, 0, "a-0") // tags go, sql
		if err != nil {
			t.Fatal(err)
		}
		a.Tags = []string{"rust"}
		if err := db.UpdateArticle(ctx, &a); err != nil {
			t.Fatal(err)
		}
		check(12, map[string]int{"go": 11, "sql": 3, "rust": 1})
		if err := db.DeleteArticle(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		check(11, map[string]int{"go": 11, "sql": 3, "rust": 0})
		if err := db.DeleteArticle(ctx, a.ID); err != conduit.ErrNotFound {
			t.Errorf("second delete: %v", err)
		}
		check(11, map[string]int{"go": 11, "sql": 3})
	})
}
