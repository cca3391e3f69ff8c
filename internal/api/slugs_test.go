package api_test

import (
	"net/http"
	"testing"
)

// After a title change the article keeps answering at its old slug, with
// its current slug in the answer (no redirect: mobile clients simply get
// the article), for reads and writes alike. Its slugs stay its own until it
// is deleted; then all of them are 404.
func TestOldSlugsAnswer(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		alice, bob := a.register("alice"), a.register("bob")
		old := a.createArticle(alice, newArticle{Title: "Old title"}).Slug
		var upd struct{ Article articleDTO }
		a.do("PUT", "/api/articles/"+old, alice.token, map[string]any{"article": map[string]string{"title": "New title"}}).
			want(t, http.StatusOK, &upd)
		cur := upd.Article.Slug
		if cur == old {
			t.Fatalf("slug unchanged after a title change: %q", cur)
		}
		if got := a.article(old, ""); got.Slug != cur || got.Title != "New title" {
			t.Errorf("GET old slug: slug %q title %q, want %q", got.Slug, got.Title, cur)
		}
		// Writes through the old slug reach the article.
		var fav struct{ Article articleDTO }
		a.do("POST", "/api/articles/"+old+"/favorite", bob.token, nil).want(t, http.StatusOK, &fav)
		if !fav.Article.Favorited || fav.Article.Slug != cur {
			t.Errorf("favorite via old slug: %+v", fav.Article)
		}
		a.do("POST", "/api/articles/"+old+"/comments", bob.token,
			map[string]any{"comment": map[string]string{"body": "still here"}}).want(t, http.StatusOK, nil)
		var cs commentsDTO
		a.do("GET", "/api/articles/"+cur+"/comments", "", nil).want(t, http.StatusOK, &cs)
		if len(cs.Comments) != 1 {
			t.Errorf("comments at the current slug: %d, want 1", len(cs.Comments))
		}
		// Someone else's article with the old title gets a fresh slug.
		if other := a.createArticle(bob, newArticle{Title: "Old title"}).Slug; other == old || other == cur {
			t.Errorf("bob's article took slug %q", other)
		}
		a.do("DELETE", "/api/articles/"+old, alice.token, nil).want(t, http.StatusNoContent, nil)
		for _, s := range []string{old, cur} {
			a.do("GET", "/api/articles/"+s, "", nil).wantErrors(t, http.StatusNotFound)
		}
	})
}
