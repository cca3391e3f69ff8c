package conduit

import (
	"strconv"
	"time"

	"github.com/conduit-dev/conduit/internal/cache/ttl"
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
// a node can be while its invalidation listener is reconnecting. A page
// loaded before a clear is not stored after it (ttl.Map's generations).
// Signed-in viewers (whose lists carry their own favorited and following
// flags) and deeper pages are never cached.
type listCache = ttl.Map[ArticlePage]

func newListCache(ttlFor time.Duration, max int, now func() time.Time) *listCache {
	return ttl.New[ArticlePage](ttlFor, max, now)
}

// listKey is the cache key of f, or "" if f is not cacheable.
func listKey(viewerID int64, f ArticleFilter) string {
	if viewerID != 0 || f.Offset != 0 || f.Before != 0 {
		return ""
	}
	return strconv.Itoa(f.Limit) + "\x00" + f.Tag + "\x00" + f.Author + "\x00" + f.FavoritedBy
}
