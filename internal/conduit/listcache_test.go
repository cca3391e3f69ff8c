package conduit

import "testing"

// Only anonymous first pages are kept, each list under its own key (the
// keeping itself is ttl.Map's, tested there).
func TestListKey(t *testing.T) {
	key := listKey(0, ArticleFilter{Limit: 20})
	if key == "" {
		t.Fatal("the anonymous first page is not cacheable")
	}
	for _, f := range []ArticleFilter{{Limit: 20, Offset: 20}, {Limit: 20, Before: 5}} {
		if listKey(0, f) != "" {
			t.Errorf("%+v is cacheable: only first pages are", f)
		}
	}
	if listKey(7, ArticleFilter{Limit: 20}) != "" {
		t.Error("a signed-in viewer's page is cacheable")
	}
	if listKey(0, ArticleFilter{Limit: 20, Tag: "a"}) == listKey(0, ArticleFilter{Limit: 20, Author: "a"}) {
		t.Error("tag and author lists share a key")
	}
}
