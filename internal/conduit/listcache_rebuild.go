package conduit

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// Rebuilding the first pages a write dropped, in the background.
//
// With the shared tier, most first-page reads that still reach the
// database after the first read of a list follow a write that changed the
// page: a new article drops the global first page (the API's and the
// home page's list), its tag's and its author's; the next reader on each
// node finds the page's versions changed in Redis and reads the list
// (docs/stage5.md, sixth round: 143 of the 160 such reads in a minute
// followed a new article). The writing node knows which pages it dropped,
// so right after the write it reads again those it kept and served whose
// list the write changed (its own bucket: the global list, a tag's, an
// author's, a favoriter's; not the pages that merely show an edited
// article or share a bucket with the write by chance) and keeps them, in
// its memory and in Redis, so that the readers that come next, on any
// node, find them current. A page kept by a rebuild counts as served only
// once a reader is served it: a page nobody reads between two writes is
// rebuilt after the first of them only, not after every write.
//
// Freshness is a reader's: the rebuild reads the ledger stamp after the
// write's own invalidation and before the database, reads the page fresh
// (Fresh), and keeps it only as cachedList keeps a page it read: in this
// node's memory with that stamp (served only while no later write
// changed its buckets), and in Redis through KeepShared, which refuses it
// if a write changed one of its buckets since the stamp. A rebuild that
// loses to a later write is therefore a wasted read, never a stale page.
//
// Rebuilds are not reads: they count neither as list hits nor misses
// (ListCacheStats), but in ListRebuildStats.
type listRebuilder struct {
	mu      sync.Mutex
	pending map[string]ArticleFilter
	running bool
	idle    sync.WaitGroup // one per running worker (AwaitListRebuilds)
	// kept: pages rebuilt and kept; lost: rebuilds that kept nothing (a
	// later write changed the page, the node could not tell, a failed read).
	kept, lost atomic.Uint64
}

// maxRebuildsQueued bounds the pages waiting for a rebuild: a write drops
// a handful of kept pages (the global list at each page size, a tag's, an
// author's, and those sharing a bucket with them); more waiting means
// writes come faster than one worker reads, and the readers will rebuild
// the rest themselves, as without this.
const maxRebuildsQueued = 64

// rebuildTimeout bounds one rebuild, the wait for the node's list caches
// to be usable included.
const rebuildTimeout = 2 * time.Second

// WithListRebuilds makes a write rebuild, in the background, the
// anonymous first pages this node kept that it dropped (see
// listRebuilder). It takes effect only with a shared tier (the Redis
// cache), where one rebuild serves every node.
func WithListRebuilds() Option {
	return func(s *Service) { s.rebuild = &listRebuilder{pending: map[string]ArticleFilter{}} }
}

// ListRebuildStats returns how many pages the background rebuilds kept,
// and how many they could not keep.
func (s *Service) ListRebuildStats() (kept, lost uint64) {
	if s.rebuild == nil {
		return 0, 0
	}
	return s.rebuild.kept.Load(), s.rebuild.lost.Load()
}

// listOwnDeps are the buckets of the list f itself (the global list, a
// tag's, an author's, a favoriter's): a write invalidates them when it
// changes which articles the list holds (a new article, an edit of its
// tags, a favorite), not when it only changes an article the page shows
// or shares a bucket with the page by chance.
func listOwnDeps(f ArticleFilter) Deps { return depsOfKeys(ListKeys(f, ArticlePage{})) }

// rebuildDropped queues a rebuild of each page in this node's list cache
// that depends on one of the buckets d, which a write has just
// invalidated, and starts the worker if it is not running.
func (s *Service) rebuildDropped(d Deps) {
	r := s.rebuild
	if r == nil || s.shared == nil || len(d) == 0 {
		return
	}
	var changed [listBuckets]bool
	for _, b := range d {
		changed[b] = true
	}
	dropped := map[string]ArticleFilter{}
	s.lists.Range(func(key string, e listEntry) bool {
		if !e.served.Load() {
			return true
		}
		for _, b := range listOwnDeps(e.filter) {
			if changed[b] {
				dropped[key] = e.filter
				break
			}
		}
		return len(dropped) < maxRebuildsQueued
	})
	if len(dropped) == 0 {
		return
	}
	r.mu.Lock()
	for k, f := range dropped {
		if len(r.pending) >= maxRebuildsQueued {
			break
		}
		r.pending[k] = f
	}
	start := !r.running
	if start {
		r.running = true
		r.idle.Add(1)
	}
	r.mu.Unlock()
	if start {
		go s.rebuildPending()
	}
}

// rebuildPending rebuilds the queued pages one at a time until none is
// left. One worker per node: a burst of writes that drop the same page
// rebuilds it once, after the last of them that came before its turn.
func (s *Service) rebuildPending() {
	r := s.rebuild
	defer r.idle.Done()
	for {
		r.mu.Lock()
		var key string
		var f ArticleFilter
		for key, f = range r.pending {
			break
		}
		if key == "" {
			r.running = false
			r.mu.Unlock()
			return
		}
		delete(r.pending, key)
		r.mu.Unlock()
		if s.rebuildList(key, f) {
			r.kept.Add(1)
		} else {
			r.lost.Add(1)
		}
	}
}

// rebuildList reads the first page f (key: listKey) from the database
// and keeps it as cachedList keeps a page it missed, and reports whether
// it did. It is not the request's work: it has a context of its own.
func (s *Service) rebuildList(key string, f ArticleFilter) bool {
	ctx, cancel := context.WithTimeout(context.Background(), rebuildTimeout)
	defer cancel()
	// The write's own bucket keys are being tracked again (Sync says no
	// meanwhile); wait for that, as a reader arriving a moment later would.
	stamp, ok := s.ListsStamp(ctx)
	for !ok {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(2 * time.Millisecond):
		}
		stamp, ok = s.ListsStamp(ctx)
	}
	_, _, gen := s.lists.Get(key)
	page, err := s.store.ListArticles(Fresh(ctx), 0, f)
	if err != nil {
		return false
	}
	deps := depsOfKeys(ListKeys(f, page))
	if !s.ListsFresh(ctx, stamp, deps) {
		return false // a later write changed it already: its own rebuild follows
	}
	// Not served yet: if nobody reads it before the next write that
	// changes it, that write does not rebuild it again.
	s.lists.PutFor(key, listEntry{page: page, stamp: stamp, deps: deps, filter: f, served: new(atomic.Bool)}, gen, s.ListTTL())
	if b, err := json.Marshal(page); err == nil {
		s.KeepShared(ctx, sharedListKey(key), b, stamp, deps)
	}
	return true
}
