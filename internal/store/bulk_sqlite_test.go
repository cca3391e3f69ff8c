package store_test

import (
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A bulk load on SQLite leaves the full-text index in one segment (the
// triggers filled it in many; every search reads each), and search still
// finds the seeded articles.
func TestBulkLoadMergesSearchIndex(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	storetest.Seed(t, db, seed.Options{Seed: 1, Scale: 0.003, PasswordHash: "x"})
	if n, err := db.SearchSegments(ctx); err != nil || n != 1 {
		t.Errorf("search index in %d segments (%v), want 1", n, err)
	}
	all, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Limit: 1})
	if err != nil || len(all.Articles) != 1 {
		t.Fatalf("no article after seeding: %v", err)
	}
	q, err := conduit.ParseSearch(strings.Fields(all.Articles[0].Title)[0], 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	page, err := db.SearchArticles(ctx, 0, q)
	if err != nil || page.Count == 0 {
		t.Errorf("search for %q after seeding: %d matches, %v", q.Terms, page.Count, err)
	}
}
