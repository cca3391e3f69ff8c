package web

import (
	"bytes"
	"net/http"
	"time"

	"github.com/conduit-dev/conduit/internal/cache/ttl"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
)

// pageCache keeps, for a moment, the HTML of the list pages (home, a tag,
// a profile and its favorites) as an anonymous visitor gets them: they are
// the same for every anonymous visitor, and rendering twenty article
// previews is most of their cost.
//
// An entry is tagged with the service's lists version read before the page
// was built, and served only while that version is current: every write on
// any node that changes what a list page shows (articles, favorites,
// profiles; see conduit.Service.ListsVersion) makes the old pages unusable
// at once. Signed-in visitors, other pages, other methods and answers
// other than 200 pass through.
type pageCache = ttl.Map[cachedPage]

type cachedPage struct {
	version uint64
	header  http.Header // the page's own headers (content type, caching)
	body    []byte
}

// maxPageKey bounds the URLs kept (longer ones are not cached), so that
// odd query strings cannot fill memory; the entry count is bounded too.
const maxPageKey = 256

func newPageCache(ttlFor time.Duration, max int) *pageCache {
	return ttl.New[cachedPage](ttlFor, max, time.Now)
}

// freshPage returns the page kept under key if it was built at the current
// lists version, and the cache generation to store a new one under.
func freshPage(c *pageCache, key string, version uint64) (cachedPage, bool, uint64) {
	p, ok, gen := c.Get(key)
	return p, ok && p.version == version, gen
}

// cachedListPage serves next through the page cache for anonymous GETs.
func (h *handler) cachedListPage(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.RequestURI()
		if r.Method != http.MethodGet || viewerID(r) != 0 || len(key) > maxPageKey || hasFlash(r) {
			next(w, r)
			return
		}
		version, known := h.svc.ListsVersion(r.Context())
		if !known {
			next(w, r)
			return
		}
		p, ok, gen := freshPage(h.pages, key, version)
		if ok {
			hd := w.Header()
			for k, v := range p.header {
				hd[k] = v
			}
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(p.body)
			return
		}
		before := w.Header().Clone()
		rec := httpx.Buffer(w)
		// The page may be kept: build it from fresh reads (conduit.Fresh).
		next(rec, r.WithContext(conduit.Fresh(r.Context())))
		hd := w.Header()
		if (rec.Status() == 0 || rec.Status() == http.StatusOK) && hd.Get("Set-Cookie") == "" {
			h.pages.Put(key, cachedPage{version: version, header: addedHeaders(before, hd), body: bytes.Clone(rec.Body())}, gen)
		}
		_ = rec.Send()
	}
}

// addedHeaders returns the headers of after that before did not have: what
// the page handler set, not what the middleware in front of it did.
func addedHeaders(before, after http.Header) http.Header {
	out := http.Header{}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}
