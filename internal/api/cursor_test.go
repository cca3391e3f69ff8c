package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// walk follows nextCursor from path (which has no cursor) and returns every
// slug seen, failing if a page repeats or the count changes.
func (a *testAPI) walk(t *testing.T, path, token string, wantCount int) []string {
	t.Helper()
	var all []string
	next := ""
	for range 50 {
		p := path
		if next != "" {
			p += "&cursor=" + url.QueryEscape(next)
		}
		l := a.list(p, token)
		if l.ArticlesCount != wantCount {
			t.Errorf("%s: articlesCount = %d, want %d (the whole list's, on every page)", p, l.ArticlesCount, wantCount)
		}
		all = append(all, slugsOf(l)...)
		if l.NextCursor == "" {
			return all
		}
		if len(l.Articles) == 0 {
			t.Fatalf("%s: empty page with a nextCursor", p)
		}
		next = l.NextCursor
	}
	t.Fatalf("%s: more than 50 pages", path)
	return nil
}

// The keyset extension: ?cursor=<nextCursor> continues a list or the feed
// after the previous page, and the pages join up to the whole list.
func TestCursorPaging(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		s := seed(a)
		all := append(rev(s.bobSlugs), rev(s.aliceSlugs)...)
		cases := []struct {
			name, path string
			token      string
			want       []string
		}{
			{"global", "/api/articles?limit=2", "", all},
			{"global, page of 1", "/api/articles?limit=1", "", all},
			{"tag", "/api/articles?tag=sql&limit=1", "", []string{s.bobSlugs[1], s.bobSlugs[0], s.aliceSlugs[1]}},
			{"author", "/api/articles?author=" + s.alice.username + "&limit=2", "", rev(s.aliceSlugs)},
			{"favorited", "/api/articles?favorited=" + s.carol.username + "&limit=1", "", []string{s.bobSlugs[1], s.aliceSlugs[0]}},
			{"combined filters", "/api/articles?tag=sql&author=" + s.bob.username + "&limit=1", "", rev(s.bobSlugs)},
			{"feed", "/api/articles/feed?limit=2", s.dave.token, rev(s.aliceSlugs)},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got := a.walk(t, c.path, c.token, len(c.want)); !slices.Equal(got, c.want) {
					t.Errorf("pages joined = %v, want %v", got, c.want)
				}
			})
		}

		// A full last page says there is no more only when nothing follows.
		if l := a.list("/api/articles?limit=5", ""); l.NextCursor != "" || len(l.Articles) != 5 {
			t.Errorf("exact last page: %d articles, nextCursor %q", len(l.Articles), l.NextCursor)
		}
		// A write between pages does not shift the next page (unlike offsets).
		first := a.list("/api/articles?limit=2", "")
		a.createArticle(s.carol, newArticle{Title: "Newer"})
		second := a.list("/api/articles?limit=2&cursor="+url.QueryEscape(first.NextCursor), "")
		if got := slugsOf(second); !slices.Equal(got, all[2:4]) {
			t.Errorf("page after a new article = %v, want %v", got, all[2:4])
		}

		t.Run("bad cursors", func(t *testing.T) {
			for _, q := range []string{"cursor=x", "cursor=%21%21", "cursor=YTEuMA", "cursor=YTEuLTU", "cursor=MTIz",
				"cursor=" + url.QueryEscape(first.NextCursor) + "&offset=2"} {
				a.do("GET", "/api/articles?"+q, "", nil).wantErrors(t, http.StatusUnprocessableEntity)
				a.do("GET", "/api/articles/feed?"+q, s.dave.token, nil).wantErrors(t, http.StatusUnprocessableEntity)
			}
		})
	})
}
