package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Every page has a search box; the results page lists matching articles
// (as previews, paged), people and tags.
func TestSearchPage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		alice := s.browser().signUp("gardener")
		alice.publish("Gardening notes", "gardening")
		alice.publish("Cooking", "food")
		anon := s.browser()
		wantContains(t, anon.get("/"), `<form class="nav-search" role="search" aria-label="Site" action="/search" method="get">`)
		wantStatus(t, anon.get("/search"), http.StatusOK)

		res := anon.get("/search?q=garden")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, "Search results for “garden”", `<h2>Gardening notes</h2>`, `href="/profile/gardener"`,
			`<a href="/?tag=gardening" class="tag-default tag-pill">gardening</a>`)
		wantNotContains(t, res, "<h2>Cooking</h2>")
		wantContains(t, anon.get("/search?q=pasta"), "No articles match your search.")

		// Markup in the query is shown as text.
		res = anon.get("/search?q=" + url.QueryEscape("<b>garden</b>"))
		wantNotContains(t, res, "<b>garden")
		wantContains(t, res, "&lt;b&gt;garden&lt;/b&gt;")

		res = anon.get("/search?q=" + strings.Repeat("a", 201))
		wantStatus(t, res, http.StatusUnprocessableEntity)
		if msgs := errorMessages(res.Body); len(msgs) != 1 || !strings.Contains(msgs[0], "too long") {
			t.Errorf("errors %v", msgs)
		}
		wantStatus(t, anon.get("/search?q=garden&page=2"), http.StatusNotFound)
		wantStatus(t, anon.get("/search?q=garden&page=500"), http.StatusNotFound)
	})
}
