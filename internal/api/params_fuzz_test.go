package api

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// FuzzListParams feeds pageParams arbitrary query strings and checks the
// cursor's round trip for arbitrary ids (seed corpus in
// testdata/fuzz/FuzzListParams). A query is either refused with a
// validation error naming only the parameters it is about, or read into a
// non-negative limit and offset and, with a cursor, a positive id; a
// cursor the API made always reads back as its id.
func FuzzListParams(f *testing.F) {
	f.Fuzz(func(t *testing.T, query string, id int64) {
		r := httptest.NewRequest("GET", "/api/articles", nil)
		r.URL.RawQuery = query
		limit, offset, before, err := pageParams(r)
		var ve conduit.ValidationError
		switch {
		case err == nil:
			if limit < 0 || offset < 0 || before < 0 {
				t.Fatalf("%q: limit %d, offset %d, before %d", query, limit, offset, before)
			}
			q, _ := url.ParseQuery(query)
			if q.Get("cursor") != "" && before <= 0 {
				t.Fatalf("%q: a cursor accepted as id %d", query, before)
			}
			if s := q.Get("limit"); s != "" && strconv.Itoa(limit) != s {
				if n, err := strconv.Atoi(s); err != nil || n != limit {
					t.Fatalf("%q: limit read as %d", query, limit)
				}
			}
		case errors.As(err, &ve):
			for field := range ve {
				if field != "limit" && field != "offset" && field != "cursor" {
					t.Fatalf("%q: error about %q: %v", query, field, err)
				}
			}
		default:
			t.Fatalf("%q: %v is not a validation error", query, err)
		}
		if id > 0 {
			if got, ok := decodeCursor(encodeCursor(id)); !ok || got != id {
				t.Fatalf("cursor of %d reads back as %d, %v", id, got, ok)
			}
		}
	})
}
