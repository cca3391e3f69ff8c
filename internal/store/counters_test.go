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
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		now := time.Now().UTC()
		u := mkUser(t, db, "writer")
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

// users.articles_count (migration 0004) follows concurrent creates and
// deletes by several authors exactly, and the author list and the feed
// count from it.
func TestAuthorCounters(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		reader := mkUser(t, db, "reader")
		authors := []conduit.User{mkUser(t, db, "w0"), mkUser(t, db, "w1"), mkUser(t, db, "w2")}
		for _, a := range authors[:2] {
			if err := db.Follow(ctx, reader.ID, a.ID); err != nil {
				t.Fatal(err)
			}
		}
		check := func(want []int) {
			t.Helper()
			total := 0
			for i, a := range authors {
				page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Author: a.Username, Limit: 100})
				if err != nil || page.Count != want[i] || len(page.Articles) != want[i] {
					t.Fatalf("%s's list: count %d, %d rows, %v; want %d", a.Username, page.Count, len(page.Articles), err, want[i])
				}
				if i < 2 {
					total += want[i]
				}
			}
			feed, err := db.Feed(ctx, reader.ID, conduit.ArticleFilter{Limit: 100})
			if err != nil || feed.Count != total || len(feed.Articles) != total {
				t.Fatalf("feed: count %d, %d rows, %v; want %d", feed.Count, len(feed.Articles), err, total)
			}
			if err := db.CheckIntegrity(ctx); err != nil {
				t.Error(err)
			}
		}
		check([]int{0, 0, 0})

		// Concurrent creates by the three authors, then concurrent deletes
		// of some of them, with a delete of a missing id mixed in.
		var mu sync.Mutex
		var ids [3][]int64
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := i % 3
				ts := time.Now().UTC()
				a := conduit.Article{Slug: fmt.Sprintf("c-%d", i), Title: "t", Description: "d", Body: "b",
					CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: authors[w].ID}}
				if err := db.CreateArticle(ctx, &a); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids[w] = append(ids[w], a.ID)
				mu.Unlock()
			}()
		}
		wg.Wait()
		check([]int{10, 10, 10})
		for w, n := range []int{3, 0, 7} {
			for _, id := range ids[w][:n] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := db.DeleteArticle(ctx, id); err != nil {
						t.Error(err)
					}
				}()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.DeleteArticle(ctx, 1<<40); err != conduit.ErrNotFound {
				t.Errorf("delete of a missing article: %v", err)
			}
		}()
		wg.Wait()
		check([]int{7, 10, 3})
		if p, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Author: "nobody", Limit: 10}); err != nil || p.Count != 0 {
			t.Errorf("unknown author: %d, %v", p.Count, err)
		}
	})
}

// The global count is spread over slot rows on PostgreSQL (migration
// 0015), one per connection's backend: many creates and deletes at once,
// on many connections, each deleting articles another may have created,
// leave the sum exact, and a delete's slot may go below zero.
func TestArticleCountSlotsConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		u := mkUser(t, db, "slotter")
		const workers, each = 8, 12
		created := make(chan int64, workers*each)
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					ts := time.Now().UTC()
					a := conduit.Article{Slug: fmt.Sprintf("s-%d-%d", w, i), Title: "t", Description: "d", Body: "b",
						CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: u.ID}}
					if err := db.CreateArticle(ctx, &a); err != nil {
						errs <- err
						return
					}
					created <- a.ID
				}
			}()
		}
		// Deleters take articles as they appear, so a delete often runs on
		// another connection than its create.
		deleted := make(chan int, workers/2)
		for range workers / 2 {
			go func() {
				n := 0
				for id := range created {
					if id%3 != 0 {
						continue
					}
					if err := db.DeleteArticle(ctx, id); err != nil {
						errs <- err
						continue
					}
					n++
				}
				deleted <- n
			}()
		}
		wg.Wait()
		close(created)
		gone := 0
		for range workers / 2 {
			gone += <-deleted
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := workers*each - gone
		if gone == 0 {
			t.Fatal("no article was deleted")
		}
		page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Limit: 1})
		if err != nil || page.Count != want {
			t.Fatalf("global count %d, err %v; want %d (%d created, %d deleted)", page.Count, err, want, workers*each, gone)
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Error(err)
		}
	})
}

// A tag's count is spread over slot rows on PostgreSQL (migration 0016),
// one per connection's backend, as the global count: concurrent creates
// and deletes sharing tags, given in different orders, neither deadlock
// (a 503) nor lose a count, and the lists, the popular tags and the
// integrity check agree with article_tags.
func TestTagCountSlotsConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		u := mkUser(t, db, "tagger")
		orders := [][]string{{"go", "sql"}, {"sql", "go"}, {"web", "go", "sql"}, {"sql", "web"}}
		const workers, each = 8, 10
		var mu sync.Mutex
		live := map[int64][]string{}
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					ts := time.Now().UTC()
					a := conduit.Article{Slug: fmt.Sprintf("t-%d-%d", w, i), Title: "t", Description: "d", Body: "b",
						Tags: orders[(w+i)%len(orders)], CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: u.ID}}
					if err := db.CreateArticle(ctx, &a); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					live[a.ID] = a.Tags
					// Every third article is deleted by the next worker to
					// pass, often on another connection than its create.
					var victim int64
					for id := range live {
						if id%3 == 0 {
							victim = id
							break
						}
					}
					if victim != 0 {
						delete(live, victim)
					}
					mu.Unlock()
					if victim != 0 {
						if err := db.DeleteArticle(ctx, victim); err != nil {
							errs <- err
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := map[string]int{}
		for _, tags := range live {
			for _, tag := range tags {
				want[tag]++
			}
		}
		for tag, n := range want {
			page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Tag: tag, Limit: 1})
			if err != nil || page.Count != n {
				t.Errorf("tag %s: count %d, %v; want %d", tag, page.Count, err, n)
			}
		}
		// sql is on every article, go on three orders of four, web on two.
		if tags, err := db.Tags(ctx); err != nil || !slices.Equal(tags, []string{"go", "sql", "web"}) && !slices.Equal(tags, []string{"sql", "go", "web"}) {
			t.Errorf("popular tags %v, %v", tags, err)
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Error(err)
		}
	})
}

// Migration 0016 keeps the tag counts a database had: each becomes its
// tag's row of slot 0, and writes after it count on from there.
func TestTagCountSlotsMigration(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, db *store.DB) {
		if err := db.MigrateTo(ctx, 15); err != nil {
			t.Fatal(err)
		}
		ts := now()
		if err := db.Exec(ctx, `INSERT INTO users (id, username, username_key, email, password_hash, articles_count, created_at, updated_at)
			VALUES (1, 'old', 'old', 'old@example.com', 'x', 3, ?, ?)`, ts, ts); err != nil {
			t.Fatal(err)
		}
		for id, tags := range map[int][]string{1: {"go", "sql"}, 2: {"go"}, 3: {"rust"}} {
			slug := fmt.Sprintf("old-%d", id)
			if err := db.Exec(ctx, `INSERT INTO articles (id, slug, author_id, title, description, body, created_at, updated_at)
				VALUES (?, ?, 1, 't', 'd', 'b', ?, ?)`, id, slug, ts, ts); err != nil {
				t.Fatal(err)
			}
			if err := db.Exec(ctx, `INSERT INTO article_slugs (slug, article_id) VALUES (?, ?)`, slug, id); err != nil {
				t.Fatal(err)
			}
			for _, tag := range tags {
				if err := db.Exec(ctx, `INSERT INTO article_tags (article_id, tag) VALUES (?, ?)`, id, tag); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, q := range []string{
			`INSERT INTO tag_counts (tag, articles) VALUES ('go', 2), ('sql', 1), ('rust', 1)`,
			`UPDATE article_count_slots SET value = 3`,
		} {
			if err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if db.Dialect() == "postgres" { // ids were given: move the sequences past them
			for _, q := range []string{
				`SELECT setval(pg_get_serial_sequence('users', 'id'), 100)`,
				`SELECT setval(pg_get_serial_sequence('articles', 'id'), 100)`,
			} {
				if err := db.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Fatal(err)
		}
		count := func(tag string) int {
			t.Helper()
			page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Tag: tag, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			return page.Count
		}
		if g, s, r := count("go"), count("sql"), count("rust"); g != 2 || s != 1 || r != 1 {
			t.Fatalf("after the migration: go %d, sql %d, rust %d; want 2, 1, 1", g, s, r)
		}
		a := conduit.Article{Slug: "new", Title: "t", Description: "d", Body: "b", Tags: []string{"sql", "go"},
			CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: 1}}
		if err := db.CreateArticle(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteArticle(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if g, s, r := count("go"), count("sql"), count("rust"); g != 3 || s != 2 || r != 0 {
			t.Errorf("after a create and a delete: go %d, sql %d, rust %d; want 3, 2, 0", g, s, r)
		}
		if tags, err := db.Tags(ctx); err != nil || !slices.Equal(tags, []string{"go", "sql"}) {
			t.Errorf("popular tags %v, %v; want [go sql]", tags, err)
		}
		if tags, err := db.TagsByPrefix(ctx, "s", 10); err != nil || !slices.Equal(tags, []string{"sql"}) {
			t.Errorf("tags by prefix s: %v, %v", tags, err)
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Error(err)
		}
	})
}
