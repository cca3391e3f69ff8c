package store

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// Reads on SQLite prepare each query text once and reuse it; the cache
// stays bounded however many distinct texts are run.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u := conduit.User{Username: "ann", Email: "ann@example.com", PasswordHash: "x"}
	if err := db.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	a := conduit.Article{Slug: "s", Title: "t", Description: "d", Body: "b", Tags: []string{"x"}, Author: conduit.Profile{ID: u.ID}}
	if err := db.CreateArticle(ctx, &a); err != nil {
		t.Fatal(err)
	}
	list := func() {
		t.Helper()
		p, err := db.ListArticles(ctx, u.ID, conduit.ArticleFilter{Limit: 20})
		if err != nil || p.Count != 1 || len(p.Articles) != 1 || p.Articles[0].Tags[0] != "x" {
			t.Fatalf("list = %+v, %v", p, err)
		}
	}
	list()
	n := db.readStmts.len()
	if n == 0 {
		t.Fatal("no statement was cached")
	}
	for range 5 {
		list()
	}
	if got := db.readStmts.len(); got != n {
		t.Errorf("cached statements grew from %d to %d repeating the same list", n, got)
	}
	// Distinct texts beyond the bound run unprepared and still answer.
	for i := range maxCachedStatements + 10 {
		var v int
		if err := db.queryRow(ctx, "SELECT "+strconv.Itoa(i)).Scan(&v); err != nil || v != i {
			t.Fatalf("SELECT %d = %d, %v", i, v, err)
		}
	}
	if got := db.readStmts.len(); got != maxCachedStatements {
		t.Errorf("cache holds %d statements, bound %d", got, maxCachedStatements)
	}
	// A bad query still reports its error.
	if err := db.queryRow(ctx, "SELECT nope FROM nowhere").Scan(new(int)); err == nil {
		t.Error("a bad query succeeded")
	}
}
