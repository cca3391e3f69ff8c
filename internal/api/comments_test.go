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

// The bounds on writing comments answer the spec's 422 shape.
func TestCommentLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// c0 (user 2) wrote every tenth comment: more than an author may.
		storetest.Discussion(t, db, 10*conduit.MaxCommentsPerAuthor+10, 10, 10)
		a := newAPI(t, db)
		path := "/api/articles/" + storetest.DiscussionSlug + "/comments"
		body := map[string]any{"comment": map[string]string{"body": "one more"}}
		errs := a.do("POST", path, a.tokens.Issue(2), body).wantErrors(t, http.StatusUnprocessableEntity, "comments")
		if want := fmt.Sprintf("are limited to %d per author on one article", conduit.MaxCommentsPerAuthor); errs["comments"][0] != want {
			t.Errorf("errors = %v, want comments %q", errs, want)
		}
		var c struct{ Comment commentDTO }
		a.do("POST", path, a.register("newcomer").token, body).want(t, http.StatusOK, &c)
	})
}

func TestComments(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *testAPI) {
		author, reader, stranger := a.register("cauthor"), a.register("reader"), a.register("stranger")
		art := a.createArticle(author, newArticle{Title: "Discuss"})
		path := "/api/articles/" + art.Slug + "/comments"

		add := func(u user, body string) commentDTO {
			t.Helper()
			var got struct{ Comment commentDTO }
			a.do("POST", path, u.token, map[string]any{"comment": map[string]string{"body": body}}).want(t, http.StatusOK, &got)
			return got.Comment
		}
		list := func(token string) []commentDTO {
			t.Helper()
			var got commentsDTO
			a.do("GET", path, token, nil).want(t, http.StatusOK, &got)
			if got.Comments == nil {
				t.Fatal("comments is null, want a list")
			}
			if got.CommentsCount != len(got.Comments) || got.NextCursor != "" {
				t.Fatalf("%d comments, commentsCount %d, nextCursor %q", len(got.Comments), got.CommentsCount, got.NextCursor)
			}
			return got.Comments
		}

		if got := list(""); len(got) != 0 {
			t.Fatalf("comments of a new article = %v", got)
		}
		c1 := add(reader, "First!")
		c2 := add(author, "Thanks <b>reader</b>")
		if c1.ID <= 0 || c2.ID <= c1.ID || c1.Body != "First!" || c1.Author.Username != reader.username || c1.Author.Following {
			t.Fatalf("added comments = %+v, %+v", c1, c2)
		}
		checkTime(t, "createdAt", c1.CreatedAt)
		checkTime(t, "updatedAt", c1.UpdatedAt)

		t.Run("list", func(t *testing.T) {
			got := list("")
			if len(got) != 2 || got[0] != c2 || got[1] != c1 {
				t.Fatalf("comments = %+v, want %+v then %+v (newest first)", got, c2, c1)
			}
			if got[0].Body != "Thanks <b>reader</b>" {
				t.Errorf("JSON bodies are not HTML-escaped by the server: %q", got[0].Body)
			}
			a.do("POST", "/api/profiles/"+author.username+"/follow", stranger.token, nil).want(t, 200, nil)
			got = list(stranger.token)
			if !got[0].Author.Following || got[1].Author.Following {
				t.Errorf("stranger's view: following = %v, %v; want true, false", got[0].Author.Following, got[1].Author.Following)
			}
		})

		t.Run("invalid", func(t *testing.T) {
			cases := []struct {
				name, body string
				status     int
			}{
				{"missing body", `{"comment":{}}`, 422},
				{"blank body", `{"comment":{"body":"   "}}`, 422},
				{"no comment", `{}`, 422},
				{"too long", fmt.Sprintf(`{"comment":{"body":"%s"}}`, strings.Repeat("c", 5001)), 422},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					a.do("POST", path, reader.token, c.body).wantErrors(t, c.status, "body")
				})
			}
			a.do("POST", "/api/articles/no-such/comments", reader.token, map[string]any{"comment": map[string]string{"body": "x"}}).
				wantErrors(t, http.StatusNotFound)
			a.do("GET", "/api/articles/no-such/comments", "", nil).wantErrors(t, http.StatusNotFound)
			if got := list(""); len(got) != 2 {
				t.Errorf("refused comments were written: %d comments", len(got))
			}
		})

		t.Run("delete", func(t *testing.T) {
			del := func(slug string, id any, u user) response {
				return a.do("DELETE", fmt.Sprintf("/api/articles/%s/comments/%v", slug, id), u.token, nil)
			}
			// Only the comment's author may delete it; the article's author may not.
			del(art.Slug, c1.ID, stranger).wantErrors(t, http.StatusForbidden)
			del(art.Slug, c1.ID, author).wantErrors(t, http.StatusForbidden)
			del(art.Slug, 999999, reader).wantErrors(t, http.StatusNotFound)
			del(art.Slug, "abc", reader).wantErrors(t, http.StatusNotFound)
			del(art.Slug, -1, reader).wantErrors(t, http.StatusNotFound)
			del("no-such", c1.ID, reader).wantErrors(t, http.StatusNotFound)
			// A comment is addressed through its own article only.
			otherArt := a.createArticle(reader, newArticle{Title: "Elsewhere"})
			del(otherArt.Slug, c1.ID, reader).wantErrors(t, http.StatusNotFound)

			del(art.Slug, c1.ID, reader).want(t, http.StatusNoContent, nil)
			del(art.Slug, c1.ID, reader).wantErrors(t, http.StatusNotFound)
			if got := list(""); len(got) != 1 || got[0].ID != c2.ID {
				t.Errorf("comments after delete = %+v", got)
			}
		})
	})
}

func TestTags(t *testing.T) {
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
