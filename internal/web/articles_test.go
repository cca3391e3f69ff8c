package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func mustArticles(t *testing.T, s *site) []conduit.Article {
	t.Helper()
	p, err := s.svc.Articles(context.Background(), 0, conduit.ArticleFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return p.Articles
}

func TestEditorCreatesAndEditsArticle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("alice")

		res := b.get("/editor")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, `name="title" placeholder="Article Title"`, `name="description" placeholder="What's this article about?"`,
			`name="body" placeholder="Write your article (in markdown)"`, `name="tags" placeholder="Enter tags"`, ">Publish Article</button>",
			`<label class="visually-hidden" for="title">`)

		// Invalid: 422 with messages; everything typed is kept.
		res = b.post("/editor", url.Values{"title": {" "}, "description": {"kept description"}, "body": {"kept **body**"}, "tags": {"a b"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		if got := errorMessages(res.Body); strings.Join(got, "|") != "title can&#39;t be blank" {
			t.Errorf("errors %q", got)
		}
		wantContains(t, res, `value="kept description"`, ">kept **body**</textarea>", `value="a b"`)

		slug := b.post("/editor", url.Values{
			"title": {"How to train <your> dragon"}, "description": {"Ever wonder how?"},
			"body": {"# Step one\n\nUse **Go**.\n\n- a\n- b\n"}, "tags": {"dragons, training go"},
		}).Header.Get("Location")
		if slug != "/article/how-to-train-your-dragon" {
			t.Fatalf("Location %q", slug)
		}
		res = b.get(slug)
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, "<h1>How to train &lt;your&gt; dragon</h1>", "<h1>Step one</h1>", "<strong>Go</strong>", "<li>a</li>",
			`<li class="tag-default tag-pill tag-outline"><a href="/?tag=dragons">dragons</a></li>`, ">training</a>", ">go</a>",
			"Edit Article", "Delete Article", `class="article-meta"`)
		wantNotContains(t, res, "Follow alice", "Favorite Article")

		res = b.get("/editor/how-to-train-your-dragon")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, `action="/editor/how-to-train-your-dragon"`, `value="dragons go training"`, "# Step one")

		res = b.post("/editor/how-to-train-your-dragon", url.Values{"title": {"Dragons 101"}, "description": {"d"}, "body": {"new body"}, "tags": {""}})
		wantRedirect(t, res, "/article/dragons-101")
		res = b.get("/article/dragons-101")
		wantContains(t, res, "<h1>Dragons 101</h1>", "<p>new body</p>")
		wantNotContains(t, res, "tag-pill")

		res = b.post("/editor/dragons-101", url.Values{"title": {"Dragons 101"}, "description": {""}, "body": {"new body"}})
		wantStatus(t, res, http.StatusUnprocessableEntity)
		wantContains(t, res, "description can&#39;t be blank", `action="/editor/dragons-101"`)
	})
}

func TestOthersArticlesAreForbidden(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		slug := s.browser().signUp("owner").publish("Mine", "")
		b := s.browser().signUp("intruder")

		res := b.get("/article/" + slug)
		wantStatus(t, res, http.StatusOK)
		wantNotContains(t, res, "Edit Article", "Delete Article")
		wantContains(t, res, "Follow owner", "Favorite Article")

		wantStatus(t, b.get("/editor/"+slug), http.StatusForbidden)
		res = b.post("/editor/"+slug, url.Values{"title": {"Hacked"}, "description": {"x"}, "body": {"x"}})
		wantStatus(t, res, http.StatusForbidden)
		wantContains(t, res, "You are not allowed to do that.")
		wantStatus(t, b.post("/article/"+slug+"/delete", nil), http.StatusForbidden)
		if a := mustArticles(t, s); len(a) != 1 || a[0].Title != "Mine" {
			t.Errorf("article changed: %+v", a)
		}
	})
}

func TestDeleteArticle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("alice")
		slug := b.publish("Short lived", "x")
		wantRedirect(t, b.post("/article/"+slug+"/delete", nil), "/")
		wantStatus(t, b.get("/article/"+slug), http.StatusNotFound)
	})
}

func TestUnknownPagesAre404(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("alice")
		for _, path := range []string{"/article/nope", "/profile/nobody", "/profile/nobody/favorites", "/editor/nope", "/no/such/page", "/static/app.css"} {
			res := b.get(path)
			wantStatus(t, res, http.StatusNotFound)
			if path != "/static/app.css" {
				wantContains(t, res, "<h1>Not Found</h1>", "We couldn&#39;t find that page.")
			}
		}
		wantStatus(t, b.post("/article/nope/favorite", nil), http.StatusNotFound)
		wantStatus(t, b.post("/profile/nobody/follow", nil), http.StatusNotFound)
		wantStatus(t, b.post("/article/nope/comments", url.Values{"body": {"hi"}}), http.StatusNotFound)
	})
}

func TestFavoriteReturnsToPage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		slug := s.browser().signUp("author").publish("Likeable", "")
		b := s.browser().signUp("fan")

		res := b.post("/article/"+slug+"/favorite", url.Values{"next": {"/?page=1"}})
		wantRedirect(t, res, "/?page=1")
		res = b.get("/article/" + slug)
		wantContains(t, res, "Unfavorite Article <span class=\"counter\">(1)</span>", `action="/article/likeable/unfavorite"`)
		res = b.get("/profile/fan/favorites")
		wantContains(t, res, "<h2>Likeable</h2>", `class="nav-link active" href="/profile/fan/favorites"`)

		// next must be a path on this site.
		wantRedirect(t, b.post("/article/"+slug+"/unfavorite", url.Values{"next": {"https://evil.example/"}}), "/article/"+slug)
		res = b.get("/")
		wantContains(t, res, `<button type="submit" class="btn btn-sm btn-outline-primary" aria-pressed="false">`,
			`<span class="visually-hidden"> favorites: favorite “Likeable”</span>`)
		wantContains(t, b.get("/profile/fan/favorites"), "No favorited articles yet.")
	})
}
