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

// A value is fresh until a bucket it depends on, or everything, is
// invalidated after its stamp; invalidations of other buckets leave it.
func TestListLedger(t *testing.T) {
	var l listLedger
	s := l.stamp()
	page := depsOfKeys([]string{TagKey("go"), ArticleKey(1), UserKey(2)})
	other := bucketOf(TagKey("rust"))
	for _, b := range page {
		if b == other {
			t.Fatal("the test's keys share a bucket: pick others")
		}
	}
	if !l.fresh(s, page) {
		t.Fatal("stale with no write")
	}
	l.invalidate(other)
	if !l.fresh(s, page) {
		t.Error("a write to another list made the page stale")
	}
	l.invalidate(bucketOf(ArticleKey(1)))
	if l.fresh(s, page) {
		t.Error("a write to an article on the page left it fresh")
	}
	// A value loaded after that write is fresh again, until a clear of
	// everything.
	s = l.stamp()
	if !l.fresh(s, page) {
		t.Error("stale although loaded after the write")
	}
	l.invalidateAll()
	if l.fresh(s, page) {
		t.Error("fresh after everything was invalidated")
	}
}

// An answer without edge keys depends on every list change: it shares its
// one bucket with what every write invalidates.
func TestDepsOfUnknownAnswer(t *testing.T) {
	d := DepsOf("")
	if len(d) != 1 || d[0] != bucketOf(keyAnyList) {
		t.Fatalf("DepsOf(\"\") = %v", d)
	}
	if got := DepsOf("tag-abc  article-7"); len(got) != 2 || got[0] != bucketOf("tag-abc") || got[1] != bucketOf("article-7") {
		t.Errorf("DepsOf = %v", got)
	}
}
