package web

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func TestHomeTabsTagsAndPagination(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		b := s.browser().signUp("prolific")
		for i := 1; i <= 12; i++ {
			tags := "even"
			if i%2 == 1 {
				tags = "odd"
			}
			b.publish(fmt.Sprintf("Article number %02d", i), tags)
		}
		anon := s.browser()

		res := anon.get("/")
		wantStatus(t, res, http.StatusOK)
		if n := res.count(`<article class="article-preview" id=`); n != 10 {
			t.Errorf("page 1 has %d previews, want 10", n)
		}
		wantContains(t, res, "<h2>Article number 12</h2>", "<h2>Article number 03</h2>", `class="nav-link active" href="/" aria-current="page">Global Feed`,
			`<summary>Popular Tags</summary>`, `<a href="/?tag=odd" class="tag-default tag-pill">odd</a>`, `<a class="page-link" href="/?page=2">2</a>`,
			`<span class="page-link" aria-current="page">1</span>`)
		wantNotContains(t, res, "Your Feed", "Article number 02")

		res = anon.get("/?page=2")
		if n := res.count(`<article class="article-preview" id=`); n != 2 {
			t.Errorf("page 2 has %d previews, want 2", n)
		}
		wantContains(t, res, "<h2>Article number 01</h2>", `<a class="page-link" href="/">1</a>`)

		res = anon.get("/?tag=odd")
		if n := res.count(`<article class="article-preview" id=`); n != 6 {
			t.Errorf("tag odd has %d previews, want 6", n)
		}
		wantContains(t, res, `class="nav-link active" href="/?tag=odd" aria-current="page"># odd</a>`)
		wantNotContains(t, res, "Article number 02", "page-link")

		res = anon.get("/?page=zzz")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, res, "<h2>Article number 12</h2>")

		wantContains(t, anon.get("/?tag=none"), "No articles are here... yet.")
		wantContains(t, b.get("/"), ">Your Feed</a>")
	})
}

func TestPaginationWindow(t *testing.T) {
	t.Parallel()
	u := mustURL(t, "/?tag=x")
	links := pagination(*u, 50, 1000) // 100 pages
	var labels []string
	for _, l := range links {
		labels = append(labels, l.Label)
	}
	want := "« Previous 1 … 47 48 49 50 51 52 53 … 100 Next »"
	if got := fmt.Sprint(labels); got != "["+want+"]" {
		t.Errorf("labels %s, want [%s]", got, want)
	}
	if links[0].URL != "/?page=49&tag=x" {
		t.Errorf("previous URL %q", links[0].URL)
	}
	if pagination(*u, 1, 10) != nil {
		t.Error("a single page needs no pagination")
	}
}
