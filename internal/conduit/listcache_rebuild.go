package conduit

import (
	"context"
	"encoding/json"
	mrand "math/rand/v2"
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
// followed a new article). So the nodes rebuild them instead, right after
// the write: each node the pages it kept and served since whose list the
// write changed (its own bucket: the global list, a tag's, an author's, a
// favoriter's; not the pages that merely show an edited article or share
// a bucket with the write by chance). The writing node does at once
// (rebuildDropped, from bucketsChanged); every node, the writer included,
// also when it hears of the write (heardChanged, from the watch), a
// moment later (remoteRebuildDelay), and takes the page from Redis if the
// writer or another node kept it meanwhile, reading the database only if
// none did: the lists behind the site's pages are kept only by the nodes
// that built a site page from them, often not the writer. A page kept by
// a rebuild counts as served only once a reader gets it on this node: a
// page nobody reads here between two writes is rebuilt after the first of
// them only.
//
// Freshness is a reader's: the rebuild reads the ledger stamp after the
// write's own invalidation and before the database, reads the page fresh
// (Fresh), and keeps it only as cachedList keeps a page it read: in this
// node's memory with that stamp (served only while no later write
// changed its buckets), and in Redis through KeepShared, which refuses it
// if a write changed one of its buckets since the stamp. A rebuild that
// loses to a later write is therefore a wasted read, never a stale page.
// A page taken from Redis is kept as a reader keeps one (SharedList: the
// stamp read before the versions, served only while they are current).
//
// Rebuilds are not reads: they count neither as list hits nor misses
// (ListCacheStats), but in ListRebuildStats and ListRebuildsShared.
type listRebuilder struct {
	mu      sync.Mutex
	pending map[string]ArticleFilter
	running bool
	idle    sync.WaitGroup // one per running worker (AwaitListRebuilds)
	// heard: buckets writes invalidated, heard through the watch (this
	// node's own writes' too), rebuilt after remoteRebuildDelay
	// (heardTimer: a rebuild of them is due).
	heard      map[uint16]bool
	heardTimer bool
	delay      time.Duration // remoteRebuildDelay but in tests
	// kept: pages read from the database and kept; shared: pages found
	// current in the shared tier (another node rebuilt them first); lost:
	// rebuilds that kept nothing (a later write changed the page, the node
	// could not tell, a failed read).
	kept, shared, lost atomic.Uint64
}

// remoteRebuildDelay is how long a node waits, at most, before rebuilding
// the pages another node's write dropped: the writing node rebuilds those
// it kept at once, and a node that comes later finds them current in the
// shared tier instead of reading them too. Spread at random over the
// delay, so that two nodes with the same page seldom read it both.
const remoteRebuildDelay = 150 * time.Millisecond

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
	return func(s *Service) {
		s.rebuild = &listRebuilder{pending: map[string]ArticleFilter{}, heard: map[uint16]bool{}, delay: remoteRebuildDelay}
	}
}

// ListRebuildStats returns how many pages the background rebuilds read
// from the database and kept, and how many rebuilds kept nothing.
func (s *Service) ListRebuildStats() (kept, lost uint64) {
	if s.rebuild == nil {
		return 0, 0
	}
	return s.rebuild.kept.Load(), s.rebuild.lost.Load()
}

// ListRebuildsShared returns how many pages a background rebuild found
// current in the shared tier (rebuilt by another node) and kept without
// a database read.
func (s *Service) ListRebuildsShared() uint64 {
	if s.rebuild == nil {
		return 0
	}
	return s.rebuild.shared.Load()
}

// heardChanged is told of each bucket a write invalidated, on any node
// (the watch): after remoteRebuildDelay, at random, the pages this node
// kept and served that depend on them are rebuilt, unless a reader or
// this node's own write did it first. The writing node's rebuild
// (rebuildDropped, at once) keeps its pages in the shared tier, where the
// others then find them.
func (s *Service) heardChanged(b uint16) {
	r := s.rebuild
	if r == nil || s.shared == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heard[b] = true
	if r.heardTimer {
		return
	}
	r.heardTimer = true
	time.AfterFunc(r.delay/3+mrand.N(r.delay*2/3), func() {
		r.mu.Lock()
		d := make(Deps, 0, len(r.heard))
		for b := range r.heard {
			d = append(d, b)
		}
		clear(r.heard)
		r.heardTimer = false
		r.mu.Unlock()
		s.rebuildDropped(d)
	})
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
		switch s.rebuildList(key, f) {
		case rebuildKept:
			r.kept.Add(1)
		case rebuildShared:
			r.shared.Add(1)
		case rebuildLost:
			r.lost.Add(1)
		}
	}
}

// rebuildList makes the first page f (key: listKey) current again in
// this node's memory: from the shared tier if another node rebuilt it,
// else read from the database and kept as cachedList keeps a page it
// missed. It is not the request's work: it has a context of its own.
func (s *Service) rebuildList(key string, f ArticleFilter) rebuildResult {
	ctx, cancel := context.WithTimeout(context.Background(), rebuildTimeout)
	defer cancel()
	// The write's own bucket keys are being tracked again (Sync says no
	// meanwhile); wait for that, as a reader arriving a moment later would.
	stamp, ok := s.ListsStamp(ctx)
	for !ok {
		select {
		case <-ctx.Done():
			return rebuildLost
		case <-time.After(2 * time.Millisecond):
		}
		stamp, ok = s.ListsStamp(ctx)
	}
	e, ok, gen := s.lists.Get(key)
	if ok && s.ledger.fresh(e.stamp, e.deps) {
		return rebuildDone // a reader, or a rebuild queued twice, was first
	}
	// Another node may have rebuilt it already (the writing node does at
	// once): take it from the shared tier, as a reader would.
	if b, deps, stamp, ok := s.SharedList(ctx, sharedListKey(key)); ok {
		var kept ArticlePage
		if json.Unmarshal(b, &kept) == nil {
			s.lists.PutFor(key, listEntry{page: kept, stamp: stamp, deps: deps, filter: f, served: new(atomic.Bool)}, gen, s.ListTTL())
			return rebuildShared
		}
	}
	page, err := s.store.ListArticles(Fresh(ctx), 0, f)
	if err != nil {
		return rebuildLost
	}
	deps := depsOfKeys(ListKeys(f, page))
	if !s.ListsFresh(ctx, stamp, deps) {
		return rebuildLost // a later write changed it already: its own rebuild follows
	}
	// Not served yet: if nobody reads it before the next write that
	// changes it, that write does not rebuild it again.
	s.lists.PutFor(key, listEntry{page: page, stamp: stamp, deps: deps, filter: f, served: new(atomic.Bool)}, gen, s.ListTTL())
	if b, err := json.Marshal(page); err == nil {
		s.KeepShared(ctx, sharedListKey(key), b, stamp, deps)
	}
	return rebuildKept
}

// What a rebuild did.
type rebuildResult int

const (
	rebuildKept   rebuildResult = iota // read from the database and kept
	rebuildShared                      // found current in the shared tier
	rebuildDone                        // already current in this node's memory
	rebuildLost                        // kept nothing
)
