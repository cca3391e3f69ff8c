package web

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A page's marks come out as the ids and counts they carry, and the page
// goes back together with any counts; another handler's marks, and a
// malformed one, are not taken for marks.
func TestCountMarksSplitAndJoin(t *testing.T) {
	t.Parallel()
	m := newCountMarker()
	body := []byte("<a>" + string(m.mark(7, 3)) + "</a><b>" + string(m.mark(12, 0)) + "</b>")
	b, built, ok := m.split(body)
	if !ok || !slices.Equal(b.IDs, []int64{7, 12}) || !slices.Equal(built, []int{3, 0}) || !b.valid() {
		t.Fatalf("split: ok %v, ids %v, counts %v, %d parts", ok, b.IDs, built, len(b.Parts))
	}
	if got := string(b.join(built)); got != "<a>3</a><b>0</b>" {
		t.Errorf("joined with the counts built: %q", got)
	}
	if got := string(b.join([]int{41, 5})); got != "<a>41</a><b>5</b>" {
		t.Errorf("joined with other counts: %q", got)
	}

	other := newCountMarker()
	if b, _, ok := other.split(body); !ok || len(b.IDs) != 0 {
		t.Errorf("another marker split %d marks", len(b.IDs))
	}
	if _, _, ok := m.split([]byte("x" + string(m) + "7:three\x00y")); ok {
		t.Error("a malformed mark was split")
	}
}

// The pages the page cache builds and serves show numbers, never a mark:
// the first view (built, kept) and the second (served from the kept page)
// are the same page.
func TestKeptPagesShowCounts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, Options{})
		writer := s.browser().signUp("writer")
		writer.publish("News post", "news")
		fan := s.browser().signUp("fan")
		if res := fan.post("/article/news-post/favorite", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("favorite: %d", res.StatusCode)
		}
		anon := s.browser()
		for _, p := range []string{"/", "/?tag=news", "/profile/writer", "/profile/fan/favorites", "/search?q=news"} {
			first := anon.get(p)
			second := anon.get(p)
			wantStatus(t, second, http.StatusOK)
			wantContains(t, second, `1<span class="visually-hidden"> favorites: favorite “News post”`)
			if strings.ContainsRune(first.Body, 0) || strings.ContainsRune(second.Body, 0) {
				t.Errorf("%s: a count mark reached the page", p)
			}
			if first.Body != second.Body {
				t.Errorf("%s: the kept page differs from the page built", p)
			}
		}
	})
}
