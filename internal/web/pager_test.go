package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func labels(links []pageLink) string {
	var out []string
	for _, l := range links {
		s := l.Label
		if l.Far {
			s = "(" + s + ")"
		}
		if l.Current {
			s = "[" + s + "]"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// Past the last page the pager links back to the last pages; links more
// than one page from the current one are marked far (hidden on phones).
func TestPaginationPastTheEnd(t *testing.T) {
	t.Parallel()
	u := mustURL(t, "/")
	for _, tt := range []struct {
		current, total int
		want           string
	}{
		{50, 1000, "« Previous 1 … (47) (48) 49 [50] 51 (52) (53) … 100 Next »"},
		{1, 35, "[1] 2 3 4 Next »"},
		{4, 35, "« Previous 1 2 3 [4]"},
		{9, 35, "« Previous 1 2 3 4"},                  // past the end: back to 4, the last
		{500, 1000, "« Previous 1 … (97) (98) 99 100"}, // no current page, no Next
		{3, 0, "« Previous 1"},                         // an empty list: back to its only page
	} {
		links := pagination(*u, tt.current, tt.total)
		if got := labels(links); got != tt.want {
			t.Errorf("page %d of %d articles: %s, want %s", tt.current, tt.total, got, tt.want)
		}
		if tt.current > 1 && tt.current*perPage > tt.total+perPage {
			last := max(1, (tt.total+perPage-1)/perPage)
			want := "/"
			if last > 1 {
				want = fmt.Sprintf("/?page=%d", last)
			}
			if links[0].URL != want {
				t.Errorf("page %d of %d articles: previous goes to %s, want %s", tt.current, tt.total, links[0].URL, want)
			}
		}
	}
}

// A page past the end of a list is a 404 that says so and shows the way
// back; the API keeps the spec's behaviour (an empty page, 200).
func TestPagePastTheEnd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		alice := s.browser().signUp("alice")
		for i := range 12 {
			alice.publish(fmt.Sprintf("Article %d", i), "t")
		}
		anon := s.browser()
		for _, path := range []string{"/?page=3", "/?tag=t&page=9", "/profile/alice?page=5", "/profile/alice/favorites?page=2"} {
			res := anon.get(path)
			wantStatus(t, res, http.StatusNotFound)
			wantContains(t, res, "There is no page ", `class="page-link" href="`)
			wantNotContains(t, res, `class="article-preview" id=`)
		}
		wantContains(t, anon.get("/?page=3"), "this list has 2 pages.", `href="/?page=2">« Previous</a>`)
		wantContains(t, anon.get("/profile/alice/favorites?page=2"), "this list has 1 page.")
		// Within range, and an empty list's first page, are 200.
		wantStatus(t, anon.get("/?page=2"), http.StatusOK)
		wantStatus(t, anon.get("/?tag=none"), http.StatusOK)
	})
}
