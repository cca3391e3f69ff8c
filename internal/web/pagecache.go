package web

import (
	"bytes"
	"net/http"
	"sync"
	"time"
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
type pageCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	now     func() time.Time
	entries map[string]cachedPage
}

type cachedPage struct {
	version uint64
	expires time.Time
	header  http.Header // the page's own headers (content type, caching)
	body    []byte
}

// maxPageKey bounds the URLs kept (longer ones are not cached), so that
// odd query strings cannot fill memory; the entry count is bounded too.
const maxPageKey = 256

func newPageCache(ttl time.Duration, max int) *pageCache {
	return &pageCache{ttl: ttl, max: max, now: time.Now, entries: make(map[string]cachedPage)}
}

func (c *pageCache) get(key string, version uint64) (cachedPage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || e.version != version || c.now().After(e.expires) {
		return cachedPage{}, false
	}
	return e, true
}

func (c *pageCache) put(key string, p cachedPage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	p.expires = c.now().Add(c.ttl)
	c.entries[key] = p
}

// cachedListPage serves next through the page cache for anonymous GETs.
func (h *handler) cachedListPage(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.RequestURI()
		if r.Method != http.MethodGet || viewerID(r) != 0 || len(key) > maxPageKey || hasFlash(r) {
			next(w, r)
			return
		}
		version := h.svc.ListsVersion()
		if p, ok := h.pages.get(key, version); ok {
			hd := w.Header()
			for k, v := range p.header {
				hd[k] = v
			}
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(p.body)
			return
		}
		rec := &recorder{ResponseWriter: w, before: cloneHeader(w.Header())}
		next(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		hd := w.Header()
		if rec.status == http.StatusOK && hd.Get("Set-Cookie") == "" {
			h.pages.put(key, cachedPage{version: version, header: addedHeaders(rec.before, hd), body: bytes.Clone(rec.body.Bytes())})
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// recorder holds a handler's answer so it can be both sent and kept.
type recorder struct {
	http.ResponseWriter
	before http.Header // the headers set before the handler ran
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func cloneHeader(h http.Header) http.Header { return h.Clone() }

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
