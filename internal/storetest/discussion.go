package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/store"
)

// DiscussionSlug is the slug of the article Discussion writes.
const DiscussionSlug = "discussion"

// Discussion fills an empty database quickly (one bulk load) with an
// article by the user "author" (id 1) and n comments on it, comment i
// (from 0, oldest first, id 10i+1) written by user "c<i%commenters>" (id
// 2+i%commenters) with a body of bodyLen bytes that starts "comment <i> ".
// Between them come nine times as many comments on a second article, so
// that, as in a real database, the discussion's comments are a small part
// of the table. Its users have no usable password.
func Discussion(t testing.TB, db *store.DB, n, commenters, bodyLen int) {
	t.Helper()
	discussion(t, db, n, commenters, bodyLen, true)
}

// DiscussionAlone is Discussion without the comments on the second
// article (the article is there, uncommented): for a test that needs many
// comments on one article and nothing else, such as the per-article
// limit's ten thousand, where nine times as many rows again made the
// load most of the test's time.
func DiscussionAlone(t testing.TB, db *store.DB, n, commenters, bodyLen int) {
	t.Helper()
	discussion(t, db, n, commenters, bodyLen, false)
}

func discussion(t testing.TB, db *store.DB, n, commenters, bodyLen int, elsewhere bool) {
	t.Helper()
	ctx := context.Background()
	l, err := db.BulkLoad(ctx)
	if err != nil {
		t.Fatalf("bulk load: %v", err)
	}
	defer l.Close()
	start := time.Now().UTC().Add(-time.Duration(n) * time.Second).Truncate(time.Second)
	users := []store.UserRow{{ID: 1, Username: "author", Email: "author@example.com", PasswordHash: "-", CreatedAt: start}}
	for i := range commenters {
		name := fmt.Sprintf("c%d", i)
		users = append(users, store.UserRow{ID: int64(2 + i), Username: name, Email: name + "@example.com", PasswordHash: "-", CreatedAt: start})
	}
	comments := make([]store.CommentRow, 0, 10*n)
	for i := range n {
		body := fmt.Sprintf("comment %d ", i)
		at := start.Add(time.Duration(i) * time.Second)
		comments = append(comments, store.CommentRow{ID: int64(10*i + 1), ArticleID: 1, AuthorID: int64(2 + i%commenters),
			Body: body + strings.Repeat("x", max(0, bodyLen-len(body))), CreatedAt: at})
		if !elsewhere {
			continue
		}
		for j := range 9 {
			comments = append(comments, store.CommentRow{ID: int64(10*i + 2 + j), ArticleID: 2, AuthorID: 1, Body: "elsewhere", CreatedAt: at})
		}
	}
	err = l.Users(ctx, users)
	if err == nil {
		err = l.Articles(ctx, []store.ArticleRow{
			{ID: 1, Slug: DiscussionSlug, AuthorID: 1, Title: "Discussion", Description: "much said", Body: "Say *something*.", CreatedAt: start},
			{ID: 2, Slug: "elsewhere", AuthorID: 1, Title: "Elsewhere", Description: "more said", Body: "Or not.", CreatedAt: start},
		})
	}
	if err == nil {
		err = l.Comments(ctx, comments)
	}
	if err == nil {
		err = l.Finish(ctx, nil)
	}
	if err != nil {
		t.Fatalf("bulk load a discussion: %v", err)
	}
}
