package storetest

import (
	"context"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
)

// State is what a test reads back to prove that requests wrote nothing:
// the row count of every table, some users, and one article with its
// comments, and the tag list.
type State struct {
	Counts   map[string]int64
	Users    []conduit.User
	Article  conduit.Article
	Comments []conduit.Comment
	Tags     []string
}

// ReadState reads the State of the users with userIDs and the article
// with slug.
func ReadState(t testing.TB, db *store.DB, userIDs []int64, slug string) State {
	t.Helper()
	ctx := context.Background()
	var s State
	var err error
	if s.Counts, err = db.TableCounts(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range userIDs {
		u, err := db.UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s.Users = append(s.Users, u)
	}
	if s.Article, err = db.ArticleBySlug(ctx, 0, slug); err != nil {
		t.Fatal(err)
	}
	// The stored rendering of the body is a cache the first view of the
	// article fills (any page that shows it, an error page too): not input.
	s.Article.BodyHTML, s.Article.BodyHTMLVersion = "", 0
	comments, err := db.Comments(ctx, 0, s.Article.ID, conduit.CommentFilter{Limit: conduit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	s.Comments = comments.Comments
	if s.Tags, err = db.Tags(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}
