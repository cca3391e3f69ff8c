package conduit

import (
	"testing"
	"time"
)

func TestListCacheTTLAndGeneration(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newListCache(time.Second, 3, func() time.Time { return now })
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

	_, ok, gen := c.get(key)
	if ok {
		t.Fatal("hit in an empty cache")
	}
	c.put(key, ArticlePage{Count: 1}, gen)
	if p, ok, _ := c.get(key); !ok || p.Count != 1 {
		t.Fatalf("get after put = %+v, %v", p, ok)
	}
	now = now.Add(1001 * time.Millisecond)
	if _, ok, _ := c.get(key); ok {
		t.Error("an entry outlived its ttl")
	}

	// A page read before a write that cleared the cache is not stored.
	_, _, gen = c.get(key)
	c.clear()
	c.put(key, ArticlePage{Count: 2}, gen)
	if _, ok, _ := c.get(key); ok {
		t.Error("a page read before a clear was stored after it")
	}

	// The size bound holds.
	for i := range 10 {
		_, _, gen := c.get(string(rune('a' + i)))
		c.put(string(rune('a'+i)), ArticlePage{}, gen)
		if len(c.entries) > 3 {
			t.Fatalf("%d entries, bound 3", len(c.entries))
		}
	}
}
