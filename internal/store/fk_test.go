package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A favorite or comment on an article deleted a moment before is "not
// found", not a server error.
func TestWriteToDeletedArticleIsNotFound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		now := time.Now().UTC()
		u := mkUser(t, db, "fk")
		a := conduit.Article{Slug: "gone", Title: "Gone", Description: "d", Body: "b",
			CreatedAt: now, UpdatedAt: now, Author: conduit.Profile{ID: u.ID}}
		if err := db.CreateArticle(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteArticle(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Favorite(ctx, u.ID, a.ID, a.Author.ID); !errors.Is(err, conduit.ErrNotFound) {
			t.Errorf("Favorite on deleted article: got %v, want ErrNotFound", err)
		}
		c := conduit.Comment{ArticleID: a.ID, Body: "hi", CreatedAt: now, UpdatedAt: now, Author: conduit.Profile{ID: u.ID}}
		if err := db.CreateComment(ctx, &c, roomy); !errors.Is(err, conduit.ErrNotFound) {
			t.Errorf("CreateComment on deleted article: got %v, want ErrNotFound", err)
		}
	})
}
