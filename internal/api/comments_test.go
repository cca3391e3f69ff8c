package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

type commentsDTO struct {
	Comments      []commentDTO `json:"comments"`
	CommentsCount int          `json:"commentsCount"`
	NextCursor    string       `json:"nextCursor"`
}

// Issue 9.5: an article with a thousand comments of 5,000 characters gave
// 30 MB on every read of its comments. A page is bounded whatever the
// article holds: without parameters the newest DefaultCommentLimit, with
// the count and a cursor to the older ones, each page costing the same
// store calls.
func TestCommentsArePaged(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n = 1050
		storetest.Discussion(t, db, n, 10, conduit.MaxComment)
		a := newAPI(t, db)
		path := "/api/articles/" + storetest.DiscussionSlug + "/comments"

		res := a.do("GET", path, "", nil)
		var page commentsDTO
		res.want(t, http.StatusOK, &page)
		if max := conduit.DefaultCommentLimit * (conduit.MaxComment + 1000); len(res.body) > max {
			t.Fatalf("default page is %d bytes, want at most %d", len(res.body), max)
		}
		if len(page.Comments) != conduit.DefaultCommentLimit || page.CommentsCount != n || page.NextCursor == "" {
			t.Fatalf("default page: %d comments, commentsCount %d, nextCursor %q", len(page.Comments), page.CommentsCount, page.NextCursor)
		}
		if !strings.HasPrefix(page.Comments[0].Body, fmt.Sprintf("comment %d ", n-1)) {
			t.Fatalf("first comment %.20q, want the newest", page.Comments[0].Body)
		}

		// Every comment once, newest first, through the cursors; each page
		// costs the same store calls (the article, then the page).
		seen, cursor := 0, ""
		for {
			q := "?limit=100"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			before := a.store.n()
			var page commentsDTO
			a.do("GET", path+q, "", nil).want(t, http.StatusOK, &page)
			if calls := a.store.n() - before; calls > 2 {
				t.Fatalf("page after %d comments took %d store calls, want at most 2", seen, calls)
			}
			for _, c := range page.Comments {
				if want := fmt.Sprintf("comment %d ", n-1-seen); !strings.HasPrefix(c.Body, want) {
					t.Fatalf("comment %d is %.20q, want %q", seen, c.Body, want)
				}
				seen++
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if seen != n {
			t.Fatalf("paged through %d comments, want %d", seen, n)
		}

		for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?cursor=nonsense", "?offset=50"} {
			a.do("GET", path+q, "", nil).wantErrors(t, http.StatusUnprocessableEntity)
		}
	})
}

// The bounds on writing comments answer the spec's 422 shape: one author
// may write MaxCommentsPerAuthor comments on an article (a deleted one
// makes room again), others may still comment.
func TestCommentLimitPerAuthor(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// c0 (user 2) wrote every other comment: as many as an author may.
		storetest.Discussion(t, db, 2*conduit.MaxCommentsPerAuthor, 2, 10)
		a := newAPI(t, db)
		path := "/api/articles/" + storetest.DiscussionSlug + "/comments"
		body := map[string]any{"comment": map[string]string{"body": "one more"}}
		errs := a.do("POST", path, a.tokens.Issue(2, 0), body).wantErrors(t, http.StatusUnprocessableEntity, "comments")
		if want := fmt.Sprintf("are limited to %d per author on one article", conduit.MaxCommentsPerAuthor); errs["comments"][0] != want {
			t.Errorf("errors = %v, want comments %q", errs, want)
		}
		var c struct{ Comment commentDTO }
		a.do("POST", path, a.register("newcomer").token, body).want(t, http.StatusOK, &c)
		a.do("DELETE", path+"/1", a.tokens.Issue(2, 0), nil).want(t, http.StatusNoContent, nil) // c0's first
		a.do("POST", path, a.tokens.Issue(2, 0), body).want(t, http.StatusOK, &c)
	})
}

// An article takes MaxCommentsPerArticle comments, from anyone. (The
// comments are the table's only ones: the article's count is what is
// bounded, and ninety thousand more rows elsewhere made loading them most
// of the test's time.)
func TestCommentLimitPerArticle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		storetest.DiscussionAlone(t, db, conduit.MaxCommentsPerArticle, 20, 10)
		a := newAPI(t, db)
		path := "/api/articles/" + storetest.DiscussionSlug + "/comments"
		errs := a.do("POST", path, a.register("latecomer").token, map[string]any{"comment": map[string]string{"body": "me too"}}).
			wantErrors(t, http.StatusUnprocessableEntity, "comments")
		if want := fmt.Sprintf("are limited to %d per article", conduit.MaxCommentsPerArticle); errs["comments"][0] != want {
			t.Errorf("errors = %v, want comments %q", errs, want)
		}
	})
}

func TestTags(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		tags := func() []string {
			t.Helper()
			var got struct{ Tags []string }
			a.do("GET", "/api/tags", "", nil).want(t, http.StatusOK, &got)
			if got.Tags == nil {
				t.Fatal("tags is null, want a list")
			}
			return got.Tags
		}
		if got := tags(); len(got) != 0 {
			t.Fatalf("tags of an empty site = %v", got)
		}
		u := a.register("tagger")
		a.createArticle(u, newArticle{Title: "One", TagList: []string{"go", "sql"}})
		a.createArticle(u, newArticle{Title: "Two", TagList: []string{"go"}})
		last := a.createArticle(u, newArticle{Title: "Three", TagList: []string{"zebra"}})
		// Most used first, then by name.
		if got, want := tags(), []string{"go", "sql", "zebra"}; !slices.Equal(got, want) {
			t.Errorf("tags = %v, want %v", got, want)
		}
		a.do("PUT", "/api/articles/"+last.Slug, u.token, map[string]any{"article": map[string]any{"tagList": []string{"go", "yak"}}}).want(t, 200, nil)
		if got, want := tags(), []string{"go", "sql", "yak"}; !slices.Equal(got, want) {
			t.Errorf("tags after retagging = %v, want %v", got, want)
		}
		a.do("DELETE", "/api/articles/"+last.Slug, u.token, nil).want(t, http.StatusNoContent, nil)
		if got, want := tags(), []string{"go", "sql"}; !slices.Equal(got, want) {
			t.Errorf("tags after delete = %v, want %v", got, want)
		}
	})
}
