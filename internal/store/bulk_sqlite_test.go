package store_test

import (
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// searchCount is the number of articles a search for text matches.
func searchCount(t *testing.T, db *store.DB, text string) int {
	t.Helper()
	q, err := conduit.ParseSearch(text, 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	page, err := db.SearchArticles(ctx, 0, q)
	if err != nil {
		t.Fatalf("search %q: %v", text, err)
	}
	return page.Count
}

// A bulk load on SQLite leaves the full-text index in one segment (the
// triggers fill it in many, 8 at this scale, 16 at full size; every search
// reads each), that index holds exactly the articles' words after the
// merge, search finds the seeded articles, and articles written afterwards
// are indexed as before.
func TestBulkLoadMergesSearchIndex(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	storetest.Seed(t, db, seed.Options{Seed: 1, Scale: 0.003, PasswordHash: "x"})
	if n, err := db.SearchSegments(ctx); err != nil || n != 1 {
		t.Errorf("search index in %d segments (%v), want 1", n, err)
	}
	if err := db.CheckSearchIndex(ctx); err != nil {
		t.Errorf("the search index differs from the articles: %v", err)
	}
	all, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Limit: 1})
	if err != nil || len(all.Articles) != 1 {
		t.Fatalf("no article after seeding: %v", err)
	}
	if word := strings.Fields(all.Articles[0].Title)[0]; searchCount(t, db, word) == 0 {
		t.Errorf("search for %q after seeding: no match", word)
	}
	author := mkUser(t, db, "after-seed")
	mkArticle(t, db, author, "quixotic-xylophone")
	if n := searchCount(t, db, "quixotic xylophone"); n != 1 {
		t.Errorf("an article written after the seed: %d matches, want 1", n)
	}
}
