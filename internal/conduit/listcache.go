package conduit

import (
	"strconv"
	"sync"
	"time"
)

// listCache keeps, for a moment, the first pages of article lists as an
// anonymous visitor sees them: the home page, a tag's page and the API's
// first page of a list are the hottest requests, identical for every
// anonymous visitor, and each costs three queries.
//
// Freshness: any write that changes what a list shows (an article created,
// edited or deleted, a favorite added or removed, a profile changed)
// clears it at once on this node, and on every other node before the write
// is answered, through the shared cache's invalidation of keyLists (see
// Service.listsChanged), so every node reads every acknowledged write. The
// ttl (1 s) bounds how long a page lives without any write, and how stale
// a node can be while its invalidation listener is reconnecting.
// Signed-in viewers (whose lists carry their own favorited and following
// flags) and deeper pages are never cached.
type listCache struct {
	mu      sync.Mutex
	gen     uint64 // how many times the cache was cleared
	ttl     time.Duration
	max     int
	now     func() time.Time
	entries map[string]listEntry
}

type listEntry struct {
	page    ArticlePage
	expires time.Time
}

func newListCache(ttl time.Duration, max int, now func() time.Time) *listCache {
	return &listCache{ttl: ttl, max: max, now: now, entries: make(map[string]listEntry)}
}

// listKey is the cache key of f, or "" if f is not cacheable.
func listKey(viewerID int64, f ArticleFilter) string {
	if viewerID != 0 || f.Offset != 0 || f.Before != 0 {
		return ""
	}
	return strconv.Itoa(f.Limit) + "\x00" + f.Tag + "\x00" + f.Author + "\x00" + f.FavoritedBy
}

// get returns the page under key if fresh; otherwise gen, to pass to put
// after loading the page.
func (c *listCache) get(key string) (page ArticlePage, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || c.now().After(e.expires) {
		return ArticlePage{}, false, c.gen
	}
	return e.page, true, c.gen
}

// put stores page under key unless a write cleared the cache since get
// returned gen (the page may predate that write).
func (c *listCache) put(key string, page ArticlePage, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[key] = listEntry{page: page, expires: c.now().Add(c.ttl)}
}

// clear drops every page; writes call it after they commit.
func (c *listCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

// version is the number of clears so far.
func (c *listCache) version() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}
