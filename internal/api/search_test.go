package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

type searchDTO struct {
	Articles      []articleDTO `json:"articles"`
	ArticlesCount int          `json:"articlesCount"`
	Users         []profileDTO `json:"users"`
	Tags          []string     `json:"tags"`
}

func (a *testAPI) search(q, token string) searchDTO {
	a.t.Helper()
	var got searchDTO
	a.do("GET", "/api/search?q="+url.QueryEscape(q), token, nil).want(a.t, http.StatusOK, &got)
	return got
}

// found is the slugs of a search's articles, in order.
func (s searchDTO) found() string {
	return strings.Join(slugsOf(articlesDTO{Articles: s.Articles}), " ")
}

// Search finds articles having all the words (stemmed) in title,
// description or body, a title match first; users and tags by prefix. The
// index follows every write.
func TestSearch(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		alice := a.register("gopher")
		bob := a.register("bob")
		a.createArticle(alice, newArticle{Title: "Gardening notes", Description: "about plants", Body: "Tomatoes need sun.", TagList: []string{"garden"}})
		a.createArticle(bob, newArticle{Title: "Running a marathon", Description: "training plans", Body: "Start slowly; gardening helps recovery.", TagList: []string{"gardening", "sport"}})
		a.createArticle(bob, newArticle{Title: "Cooking", Description: "pasta", Body: "Boil water."})

		got := a.search("gardening", "")
		if got.ArticlesCount != 2 || got.found() != "gardening-notes running-a-marathon" {
			t.Errorf("gardening: %d %q, want the title match first", got.ArticlesCount, got.found())
		}
		if got.Articles[0].Body != nil || got.Articles[0].Author.Username != alice.username || len(got.Articles[0].TagList) != 1 {
			t.Errorf("result in the list shape: %+v", got.Articles[0])
		}
		if strings.Join(got.Tags, " ") != "gardening" {
			t.Errorf("tags by prefix: %v", got.Tags)
		}
		if got := a.search("run", ""); got.found() != "running-a-marathon" { // stemmed
			t.Errorf("run: %q", got.found())
		}
		if got := a.search("sun tomatoes", ""); got.found() != "gardening-notes" { // all words
			t.Errorf("sun tomatoes: %q", got.found())
		}
		if got := a.search("sun pasta", ""); got.ArticlesCount != 0 || len(got.Articles) != 0 {
			t.Errorf("sun pasta: %+v", got)
		}
		if got := a.search("GOPH", bob.token); len(got.Users) != 1 || got.Users[0].Username != alice.username ||
			!strings.HasPrefix(got.Users[0].Image, "http") {
			t.Errorf("users by prefix: %+v", got.Users)
		}

		// Edits and deletes reach the index in the same write.
		a.do("PUT", "/api/articles/cooking", bob.token, map[string]any{"article": map[string]string{"body": "Gardening and cooking."}}).
			want(t, http.StatusOK, nil)
		if got := a.search("gardening", ""); got.ArticlesCount != 3 {
			t.Errorf("after an edit: %d matches, want 3", got.ArticlesCount)
		}
		a.do("DELETE", "/api/articles/gardening-notes", alice.token, nil).want(t, http.StatusNoContent, nil)
		if got := a.search("tomatoes", ""); got.ArticlesCount != 0 {
			t.Errorf("after a delete: %d matches", got.ArticlesCount)
		}

		// Paging.
		var page searchDTO
		a.do("GET", "/api/search?q=gardening&limit=1&offset=1", "", nil).want(t, http.StatusOK, &page)
		if page.ArticlesCount != 2 || len(page.Articles) != 1 {
			t.Errorf("second page: %d %d", page.ArticlesCount, len(page.Articles))
		}
	})
}

// Hostile or oversized input is a 422 in the spec's error shape, never a
// query error: query syntax of either database is read as words.
func TestSearchInput(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("x")
		a.createArticle(u, newArticle{Title: "Quotes and stars", Body: "near the end"})
		for _, q := range []string{`"quotes`, `quotes*`, `NEAR(quotes stars)`, `quotes OR x`, `quotes & !stars | (`, `title:quotes`, `'; DROP TABLE articles; --`, `quotes^2 -stars`} {
			var got searchDTO
			a.do("GET", "/api/search?q="+url.QueryEscape(q), "", nil).want(t, http.StatusOK, &got)
		}
		for _, tt := range []struct{ query, field string }{
			{"q=", "q"},
			{"q=%20%20", "q"},
			{"q=" + strings.Repeat("a", 201), "q"},
			{"q=" + url.QueryEscape(strings.Repeat("w ", 9)), "q"},
			{"q=" + strings.Repeat("a", 41), "q"},
			{"q=" + url.QueryEscape("!!! ???"), "q"},
			{"q=a&limit=101", "limit"},
			{"q=a&offset=1000", "offset"},
			{"q=a&limit=x", "limit"},
		} {
			a.do("GET", "/api/search?"+tt.query, "", nil).wantErrors(t, http.StatusUnprocessableEntity, tt.field)
		}
	})
}
