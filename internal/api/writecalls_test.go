package api_test

import (
	"net/http"
	"testing"
)

// A write reads before it writes only what its answer needs and the
// change does not say (docs/performance.md, "Writes against a peer"): a
// favorite's count comes from the change and its flag is what the change
// makes it, the author's following flag is read by the favorite's own
// statement, a follow's flag is what the change makes it, and a comment
// needs the article's id alone. With the article, the author and the
// viewer cached, each is the change alone.
func TestWriteStoreCalls(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *testAPI) {
		author, viewer := a.register("author"), a.register("viewer")
		art := a.createArticle(author, newArticle{Title: "Counted calls"})
		a.do("POST", "/api/profiles/"+author.username+"/follow", viewer.token, nil).want(t, http.StatusOK, nil)
		a.article(art.Slug, viewer.token) // warms the article, the author and the viewer

		calls := func(method, path string, body any, into any) int64 {
			t.Helper()
			before := a.store.n()
			a.do(method, path, viewer.token, body).want(t, http.StatusOK, into)
			return a.store.n() - before
		}
		for i, on := range []bool{true, false, true} {
			method := "POST"
			if !on {
				method = "DELETE"
			}
			var got struct{ Article articleDTO }
			n := calls(method, "/api/articles/"+art.Slug+"/favorite", nil, &got)
			// The favorite alone, which also answers the following flag.
			if n != 1 {
				t.Errorf("%s favorite %d: %d store calls, want 1", method, i, n)
			}
			want := 0
			if on {
				want = 1
			}
			if got.Article.Favorited != on || got.Article.FavoritesCount != want || !got.Article.Author.Following {
				t.Errorf("%s favorite %d answered favorited %v, count %d, following %v; want %v, %d, true",
					method, i, got.Article.Favorited, got.Article.FavoritesCount, got.Article.Author.Following, on, want)
			}
			if g := a.article(art.Slug, viewer.token); g.Favorited != on || g.FavoritesCount != want {
				t.Errorf("after %s favorite %d: read back favorited %v, count %d", method, i, g.Favorited, g.FavoritesCount)
			}
		}
		for i, on := range []bool{false, true} {
			method := "POST"
			if !on {
				method = "DELETE"
			}
			var got struct{ Profile profileDTO }
			if n := calls(method, "/api/profiles/"+author.username+"/follow", nil, &got); n != 1 {
				t.Errorf("%s follow %d: %d store calls, want 1 (the change)", method, i, n)
			}
			if got.Profile.Following != on {
				t.Errorf("%s follow %d answered following %v", method, i, got.Profile.Following)
			}
			if p := a.profile(author.username, viewer.token); p.Following != on {
				t.Errorf("after %s follow %d: read back following %v", method, i, p.Following)
			}
		}
		// Not following the author: the favorite says so.
		a.do("DELETE", "/api/profiles/"+author.username+"/follow", viewer.token, nil).want(t, http.StatusOK, nil)
		var fav struct{ Article articleDTO }
		if n := calls("POST", "/api/articles/"+art.Slug+"/favorite", nil, &fav); n != 1 || fav.Article.Author.Following || !fav.Article.Favorited {
			t.Errorf("favorite of an unfollowed author: %d store calls, following %v, favorited %v; want 1, false, true",
				n, fav.Article.Author.Following, fav.Article.Favorited)
		}
		// One's own article: no following flag.
		var own struct{ Article articleDTO }
		a.do("POST", "/api/articles/"+art.Slug+"/favorite", author.token, nil).want(t, http.StatusOK, &own)
		if own.Article.Author.Following || own.Article.FavoritesCount != 2 {
			t.Errorf("the author's own favorite answered following %v, count %d; want false, 2", own.Article.Author.Following, own.Article.FavoritesCount)
		}
		if n := calls("POST", "/api/articles/"+art.Slug+"/comments", map[string]any{"comment": map[string]string{"body": "hi"}}, nil); n != 1 {
			t.Errorf("comment: %d store calls, want 1 (the insert)", n)
		}
	})
}
