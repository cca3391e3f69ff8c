package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
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
// An entry is kept with the lists stamp read before the page was built and
// the dependencies its edge keys name (the Surrogate-Key header the page
// handler set: the list, each article and author shown, the popular tags;
// a page without keys depends on every list change), and served only
// while no write on any node changed one of them (conduit.Service's
// ListsStamp and ListsFresh). The favorites counts are not kept with the
// page but filled in when it is served (pagecache_counts.go), so a
// favorite drops only the favoriter's favorites page. A page lives as
// long as the service keeps lists (conduit.Service.ListTTL: 1 s with the
// stage-3 caches, the value ttl with the Redis tier, not at all without a
// cache). Signed-in visitors, other pages, other methods and answers
// other than 200 pass through.
//
// With the Redis tier, a page built on one node is also kept in Redis for
// every node (conduit.Service's KeepShared and SharedList: served while
// the versions of what it shows are those it was kept with), so each page
// is built once for the cluster, not once per node; a node that gets it
// from there keeps it in its own page cache too.
//
// The popular tags beside the home and tag pages are checked by content
// instead (their key, conduit.KeyTags, is left out of the page's
// dependencies): every new article changes the tags' counts, so every
// create dropped every home and tag page on every node, though it seldom
// changes which tags are shown, in what order. The page cache reads the
// tags before building a page and hands them to the handler (tagsFor),
// which shows exactly those; the page is kept with them and served only
// while the service's tags are the same list. That read is as fresh as
// any cached value (one beginning after a write was acknowledged sees
// it), so a page is never served with tags older than the writes
// acknowledged before the request.
type pageCache = ttl.Map[cachedPage]

type cachedPage struct {
	stamp  conduit.ListStamp
	deps   conduit.Deps
	header http.Header // the page's own headers (content type, caching)
	body   countedBody // without its favorites counts
	// showsTags: the page shows tags, the popular tags it was built with.
	showsTags bool
	tags      []string
}

// maxPageKey bounds the URLs kept (longer ones are not cached), so that
// odd query strings cannot fill memory; the entry count is bounded too
// (maxPages: ~100 tags' and a thousand or two profiles' pages, at
// 10-30 KB each).
const (
	maxPageKey = 256
	maxPages   = 2000
)

func newPageCache(ttlFor time.Duration, max int) *pageCache {
	return ttl.New[cachedPage](ttlFor, max, time.Now)
}

// PageCacheStats returns the hits and misses of the anonymous page cache.
func (s *Site) PageCacheStats() (hits, misses uint64) {
	return s.h.pageHits.Load(), s.h.pageMisses.Load()
}

// cachedListPage serves next through the page cache for anonymous GETs.
func (h *handler) cachedListPage(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.RequestURI()
		if r.Method != http.MethodGet || viewerID(r) != 0 || len(key) > maxPageKey || hasFlash(r) {
			next(w, r)
			return
		}
		p, ok, gen := h.pages.Get(key)
		if ok && h.svc.ListsFresh(r.Context(), p.stamp, p.deps) && h.sameTags(r, p) {
			if counts, ok := h.currentCounts(r, p); ok {
				h.pageHits.Add(1)
				p.send(w, counts)
				return
			}
		}
		if p, ok := h.sharedPage(r, key, gen); ok {
			if counts, ok := h.currentCounts(r, p); ok {
				h.pageHits.Add(1)
				p.send(w, counts)
				return
			}
		}
		h.pageMisses.Add(1)
		stamp, known := h.svc.ListsStamp(r.Context())
		if !known {
			next(w, r)
			return
		}
		// The page may be kept: build it from fresh reads (conduit.Fresh),
		// with the popular tags read here if it shows them, and its
		// favorites counts marked (taken out below: the page is kept
		// without them, and sent with those it was built with).
		ctx := context.WithValue(conduit.Fresh(r.Context()), countsKey{}, h.counts)
		tags, tagsErr := h.svc.Tags(ctx)
		if tagsErr == nil {
			ctx = context.WithValue(ctx, tagsKey{}, tags)
		}
		before := w.Header().Clone()
		rec := httpx.Buffer(w)
		next(rec, r.WithContext(ctx))
		body, built, marksOK := h.counts.split(bytes.Clone(rec.Body()))
		hd := w.Header()
		deps, showsTags := pageDeps(hd.Get(httpx.SurrogateKeyHeader))
		status := rec.Status()
		if status == 0 {
			status = http.StatusOK
		}
		if status == http.StatusOK && marksOK && hd.Get("Set-Cookie") == "" && (!showsTags || tagsErr == nil) {
			page := cachedPage{stamp: stamp, deps: deps, header: addedHeaders(before, hd), body: body, showsTags: showsTags}
			if showsTags {
				page.tags = tags
			}
			h.pages.PutFor(key, page, gen, h.svc.ListTTL())
			if h.svc.SharesLists() { // the encoding is ~1% of the CPU, for nothing without Redis
				if b, err := json.Marshal(page.shared()); err == nil {
					h.svc.KeepShared(r.Context(), sharedPageKey(key), b, stamp, deps)
				}
			}
		}
		w.WriteHeader(status)
		_, _ = w.Write(body.join(built))
	}
}

// send writes the kept page as the answer, with counts (see
// currentCounts) in place of its favorites counts.
func (p cachedPage) send(w http.ResponseWriter, counts []int) {
	hd := w.Header()
	for k, v := range p.header {
		hd[k] = v
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(p.body.join(counts))
}

// sharedPage is what the shared tier keeps of a page (see
// conduit.Service.KeepShared): all but the stamp and the dependencies,
// which the service keeps beside it.
type sharedPage struct {
	Header    http.Header
	Body      countedBody
	ShowsTags bool
	Tags      []string
}

func (p cachedPage) shared() sharedPage {
	return sharedPage{Header: p.header, Body: p.body, ShowsTags: p.showsTags, Tags: p.tags}
}

// sharedPageKey is the shared-tier key of the page at key. The "2:" names
// this format (the body without its counts): nodes of the version before
// read "sitepage:<URL>" and would take this one's body for empty.
func sharedPageKey(key string) string { return "sitepage:2:" + key }

// sharedPage returns the page under key that a node kept in the shared
// tier, if it is current and shows the popular tags as they are now, and
// keeps it in this node's page cache too.
func (h *handler) sharedPage(r *http.Request, key string, gen uint64) (cachedPage, bool) {
	b, deps, stamp, ok := h.svc.SharedList(r.Context(), sharedPageKey(key))
	if !ok {
		return cachedPage{}, false
	}
	var sp sharedPage
	if json.Unmarshal(b, &sp) != nil || !sp.Body.valid() {
		return cachedPage{}, false
	}
	p := cachedPage{stamp: stamp, deps: deps, header: sp.Header, body: sp.Body, showsTags: sp.ShowsTags, tags: sp.Tags}
	if !h.sameTags(r, p) {
		return cachedPage{}, false
	}
	h.pages.PutFor(key, p, gen, h.svc.ListTTL())
	return p, true
}

// tagsKey carries the popular tags the page cache read for a page it may
// keep (see tagsFor).
type tagsKey struct{}

// tagsFor returns the popular tags a page shows: those the page cache
// read for it, or else the service's.
func (h *handler) tagsFor(r *http.Request) ([]string, error) {
	if tags, ok := r.Context().Value(tagsKey{}).([]string); ok {
		return tags, nil
	}
	return h.svc.Tags(r.Context())
}

// sameTags reports whether a kept page shows the popular tags as they
// are now (true if it shows none).
func (h *handler) sameTags(r *http.Request, p cachedPage) bool {
	if !p.showsTags {
		return true
	}
	tags, err := h.svc.Tags(r.Context())
	return err == nil && slices.Equal(tags, p.tags)
}

// pageDeps returns the dependencies of a page tagged with the edge keys in
// header, but for the popular tags (conduit.KeyTags), which are checked by
// content: showsTags says whether the page shows them.
func pageDeps(header string) (deps conduit.Deps, showsTags bool) {
	var keys []string
	for k := range strings.FieldsSeq(header) {
		if k == conduit.KeyTags {
			showsTags = true
			continue
		}
		keys = append(keys, k)
	}
	return conduit.DepsOf(strings.Join(keys, " ")), showsTags
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
