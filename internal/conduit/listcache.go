package conduit

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"iter"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduit-dev/conduit/internal/cache/ttl"
)

// listCache keeps, for a moment, the first pages of article lists as an
// anonymous visitor sees them: the home page, a tag's page and the API's
// first page of a list are the hottest requests, identical for every
// anonymous visitor, and each costs three queries.
//
// Freshness: each page is kept with what it shows (its edge keys: the
// list, and each article and author on it; see ListKeys) and the lists
// stamp read before it was loaded; a write that changes what lists show
// invalidates the keys of what it changed (see Service.listsChanged), at
// once on this node and on every other node before the write is answered,
// and a page is served only while none of its keys was invalidated after
// its stamp (see listLedger). So every node reads every acknowledged
// write. A page does not depend on the favorites counts it shows: it is
// served with each article's current count (withCurrentCounts), so a
// favorite drops only the favoriter's favorites list, whose members
// change, and none of the pages showing the article. The ttl bounds how
// long a page lives without any write: 1 s by default (how stale a node
// whose invalidation listener died silently can be until it notices); in
// the server the value ttl with the stage-3 caches, whose Sync is true
// only while the listener's beats came back within the last second, with
// the Redis tier, whose Sync proves before each use that no invalidation
// was missed, and on one node with the embedded database, which hears of
// no write but its own (see WithListTTL). While the cache cannot tell (a listener reconnecting,
// Redis unreachable) the list caches are bypassed, and without a cache
// that reports list changes (--cache-items 0) they are not used at all.
// Deeper pages are never cached; a signed-in viewer's first page is the
// kept page with the viewer's favorited and following marks set
// (viewermarks.go), which are never kept. With the Redis tier the pages
// are also kept in Redis for every node (the shared tier, below).
type listCache = ttl.Map[listEntry]

type listEntry struct {
	page  ArticlePage
	stamp ListStamp
	deps  Deps // of ListKeys
	// filter is what page lists, and served whether page was served since
	// it was kept: a write rebuilds the pages it drops only if they were
	// (listcache_rebuild.go).
	filter ArticleFilter
	served *atomic.Bool
}

// servedEntry is a page kept by a read that serves it.
func servedEntry(page ArticlePage, stamp ListStamp, deps Deps, f ArticleFilter) listEntry {
	e := listEntry{page: page, stamp: stamp, deps: deps, filter: f, served: new(atomic.Bool)}
	e.served.Store(true)
	return e
}

func newListCache(ttlFor time.Duration, max int, now func() time.Time) *listCache {
	return ttl.New[listEntry](ttlFor, max, now)
}

// listKey is the cache key of f, or "" if f is not cacheable.
func listKey(viewerID int64, f ArticleFilter) string {
	if viewerID != 0 || f.Offset != 0 || f.Before != 0 {
		return ""
	}
	return strconv.Itoa(f.Limit) + "\x00" + f.Tag + "\x00" + f.Author + "\x00" + f.FavoritedBy
}

// listBuckets is how many invalidation keys the list caches listen to.
// Edge keys are hashed into them: a write invalidates the buckets of the
// keys it changed, so a cached page whose keys share a bucket with those
// is dropped too (a rebuild, never a stale page). A list page shows ~40
// keys and a write changes 3–6 (with keyAnyList), so a page is dropped for
// an unrelated write with a chance of about 200/listBuckets per write.
// With 1,024 buckets that was one write in five: at the benchmark's 1.25
// list-changing writes a second a kept page went within ~4 s, which was
// fine while pages lived 1 s but capped their hits once they could live
// for minutes (docs/stage5.md); 16,384 make it one write in eighty. Every
// bucket is one key that the shared cache tracks (Redis: one tracked key
// per node and bucket, armed 512 to a pipelined read, a few hundred bytes in
// the near cache and in Redis's tracking table; one watch covers them all);
// 16,384 still fit in Deps' uint16.
const listBuckets = 16384

// keyAnyList is the dependency of pages whose edge keys are not known
// (search, the Atom feeds): every write that changes lists invalidates it,
// as every such write emptied the list caches before narrow invalidation.
const keyAnyList = "any-list"

// keyLists is a key that holds nothing: deleting it invalidates every
// list cache on every node (a write whose reach is not known, such as an
// article delete, which changes the counts of lists nobody can name).
const keyLists = "lists:changed"

// bucketKey is the shared-cache key of bucket b; deleting it is how a
// write tells the other nodes (see watcher).
func bucketKey(b int) string { return "lists:" + strconv.Itoa(b) }

// bucketOf is the bucket of an edge key: the same on every node.
func bucketOf(key string) uint16 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return uint16(h.Sum32() % listBuckets)
}

// Deps is what a cached list or page shows, as buckets of edge keys.
type Deps []uint16

// DepsOf returns the dependencies of an answer tagged with the edge keys
// in header (a Surrogate-Key value, space-separated); an answer with no
// keys depends on every list change.
func DepsOf(header string) Deps {
	var d Deps
	for k := range strings.FieldsSeq(header) {
		d = append(d, bucketOf(k))
	}
	if len(d) == 0 {
		d = append(d, bucketOf(keyAnyList))
	}
	return d
}

func depsOfKeys(keys []string) Deps {
	d := make(Deps, len(keys))
	for i, k := range keys {
		d[i] = bucketOf(k)
	}
	return d
}

// ListStamp is the lists' invalidation count at a moment (see
// Service.ListsStamp).
type ListStamp uint64

// listLedger records, per bucket, the stamp of its last invalidation. A
// value loaded after stamp s (read first) is fresh while no bucket it
// depends on was invalidated after s. Invalidations take the mutex, so a
// stamp is read either before or after the whole of one; reads of the
// ledger take none.
type listLedger struct {
	mu  sync.Mutex
	seq atomic.Uint64
	all atomic.Uint64 // stamp of the last invalidation of everything
	at  [listBuckets]atomic.Uint64
}

func (l *listLedger) stamp() ListStamp {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ListStamp(l.seq.Load())
}

func (l *listLedger) invalidate(buckets ...uint16) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seq.Add(1)
	for _, b := range buckets {
		l.at[b].Store(s)
	}
}

func (l *listLedger) invalidateAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Store(l.seq.Add(1))
}

func (l *listLedger) fresh(s ListStamp, d Deps) bool {
	if l.all.Load() > uint64(s) {
		return false
	}
	for _, b := range d {
		if l.at[b].Load() > uint64(s) {
			return false
		}
	}
	return true
}

// ListsStamp is to be read before building a value from lists (a page);
// ListsFresh then tells whether it still shows what it was built from.
// ok is false when this node cannot tell now (its shared cache is
// unreachable): build the value afresh and do not keep it.
func (s *Service) ListsStamp(ctx context.Context) (stamp ListStamp, ok bool) {
	if !s.listsOn || !s.listsSynced(ctx) {
		return 0, false
	}
	return s.ledger.stamp(), true
}

// ListsFresh reports whether no write changed what a value with deps,
// built from lists after stamp, shows. It is false when the node cannot
// tell (see ListsStamp).
func (s *Service) ListsFresh(ctx context.Context, stamp ListStamp, deps Deps) bool {
	return s.listsOn && s.listsSynced(ctx) && s.ledger.fresh(stamp, deps)
}

// ListCacheStats returns the hits and misses of the anonymous list cache
// (first pages asked for by anonymous viewers).
func (s *Service) ListCacheStats() (hits, misses uint64) {
	return s.listHits.Load(), s.listMisses.Load()
}

// watchLists makes the list caches follow invalidations made on other
// nodes, when the cache reports them, and reports whether it does: a
// cache that does not (cache.None) would leave this node's list caches
// unaware of other nodes' writes, so they are not used.
//
// One watch covers every bucket key and keyLists: a delete of bucket b's
// key invalidates b, of any other key under the prefix (keyLists) or a
// report that any may have changed, everything. A watch per key cost
// every Service (each test's, each node's start) sixteen thousand
// callbacks.
func (s *Service) watchLists() bool {
	w, ok := s.cache.(watcher)
	if !ok {
		return false
	}
	keys := func(yield func(string) bool) {
		if !yield(keyLists) {
			return
		}
		for b := range listBuckets {
			if !yield(bucketKey(b)) {
				return
			}
		}
	}
	w.WatchPrefix(keyListsPrefix, keys, func(key string) {
		b, err := strconv.Atoi(strings.TrimPrefix(key, keyListsPrefix))
		if err != nil || b < 0 || b >= listBuckets {
			s.ledger.invalidateAll()
			return
		}
		s.ledger.invalidate(uint16(b))
		s.heardChanged(uint16(b))
	})
	return true
}

// keyListsPrefix starts keyLists and every bucketKey.
const keyListsPrefix = "lists:"

// watcher is implemented by caches that report deletes, including deletes
// made on other nodes: WatchPrefix calls fn(key) when a key under prefix
// is deleted, and fn("") when any of them may have been deleted unseen (a
// clear of everything, a lost connection). keys are the keys under prefix
// the caller deletes: a cache that hears only of the keys it tracks
// (Redis) tracks those; the others need not read them.
type watcher interface {
	WatchPrefix(prefix string, keys iter.Seq[string], fn func(key string))
}

// listsChanged is called after a write that changes what lists show, with
// the edge keys of what it changed (nil: it cannot tell, every list is
// invalidated); it also invalidates the write's other cache keys, all in
// one Delete (on several nodes, one round of acknowledgements). With the
// shared tier, the same Delete drops the versions of the buckets, so the
// pages kept in Redis that show what changed are no longer current.
func (s *Service) listsChanged(ctx context.Context, edgeKeys []string, keys ...string) {
	if edgeKeys == nil {
		s.ledger.invalidateAll()
		keys = append(keys, keyLists)
		if s.shared != nil {
			keys = append(keys, versionKeyAll)
		}
		s.cache.Delete(ctx, keys...)
		return
	}
	s.bucketsChanged(ctx, depsOfKeys(append(edgeKeys, keyAnyList)), keys...)
}

// bucketsChanged invalidates the buckets d and the write's other cache keys,
// all in one Delete, as listsChanged does. Unlike listsChanged it leaves
// the pages whose edge keys are not known (keyAnyList) alone: for a write
// that changes none of them (a favorite: search and the Atom feeds do not
// depend on favorites, and their kept pages show no count).
func (s *Service) bucketsChanged(ctx context.Context, d Deps, keys ...string) {
	s.ledger.invalidate(d...)
	for _, b := range unique(d) {
		keys = append(keys, bucketKey(int(b)))
		if s.shared != nil {
			keys = append(keys, versionKey(b))
		}
	}
	s.cache.Delete(ctx, keys...)
	s.rebuildDropped(d)
}

func unique(d Deps) Deps {
	seen := make(map[uint16]bool, len(d))
	var out Deps
	for _, b := range d {
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out
}

// The shared tier: with a cache that every node shares (Redis), the
// anonymous first pages (the service's lists, and the site's rendered
// pages) are also kept there, so that a page read once anywhere is not
// read from the database by every other node, and a page a write dropped
// is rebuilt once for the cluster. A page is stored with the versions of
// its buckets, and of keyLists: keys whose value is a random token that
// every write invalidating the bucket deletes (listsChanged, in the same
// Delete as the bucket key) and that the next node keeping a page gives
// a new token. Another node serves the page while the versions it reads
// now, through the fenced near cache, are those stored (GetCurrent): a
// write acknowledged before its read began has deleted one. The node that
// stores a page has read it after its stamp, and stores it only if its
// ledger shows no invalidation of the page's buckets since then once the
// versions are read (SetCurrent's keep): a token newer than the page
// arrives after the push of the delete that replaced the old one.
//
// sharedTier is implemented by cache.Redis.
type sharedTier interface {
	GetCurrent(ctx context.Context, key string) ([]byte, bool)
	SetCurrent(ctx context.Context, key string, value []byte, versionKeys []string, ttl time.Duration, keep func() bool)
}

// versionKey is the shared-tier key of bucket b's version; versionKeyAll
// is keyLists' (every page depends on it).
func versionKey(b uint16) string { return "listver:" + strconv.Itoa(int(b)) }

const versionKeyAll = "listver:all"

// SharedList returns the value kept under key in the shared tier by any
// node (KeepShared) if it is current, with its dependencies and a stamp:
// this node may keep the value with them (ListsFresh tells until when),
// because the stamp is read before the versions were. ok is false when
// there is no shared tier, no current value, or the node cannot tell now.
func (s *Service) SharedList(ctx context.Context, key string) (value []byte, deps Deps, stamp ListStamp, ok bool) {
	if s.shared == nil {
		return nil, nil, 0, false
	}
	if stamp, ok = s.ListsStamp(ctx); !ok {
		return nil, nil, 0, false
	}
	b, ok := s.shared.GetCurrent(ctx, key)
	if !ok {
		return nil, nil, 0, false
	}
	head, value, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return nil, nil, 0, false
	}
	for f := range strings.SplitSeq(string(head), ",") {
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n >= listBuckets {
			return nil, nil, 0, false
		}
		deps = append(deps, uint16(n))
	}
	return value, deps, stamp, true
}

// SharesLists reports whether kept values go to a shared tier too
// (KeepShared does nothing otherwise: callers may skip encoding them).
func (s *Service) SharesLists() bool { return s.shared != nil }

// KeepShared stores value, built from lists after stamp and showing what
// deps name, under key in the shared tier for every node, unless a write
// changed what it shows since stamp (then it is not kept).
func (s *Service) KeepShared(ctx context.Context, key string, value []byte, stamp ListStamp, deps Deps) {
	if s.shared == nil || len(deps) == 0 {
		return
	}
	d := unique(deps)
	head := make([]string, len(d))
	versions := make([]string, 0, len(d)+1)
	for i, b := range d {
		head[i] = strconv.Itoa(int(b))
		versions = append(versions, versionKey(b))
	}
	versions = append(versions, versionKeyAll)
	stored := append([]byte(strings.Join(head, ",")+"\n"), value...)
	s.shared.SetCurrent(ctx, key, stored, versions, s.sharedTTL(), func() bool {
		return s.ListsFresh(ctx, stamp, d)
	})
}

// WithSharedListTTL sets how long a page kept in the shared tier
// (KeepShared: the service's anonymous first pages and the site's pages)
// lives there, each less up to a fifth at random; by default as long as
// ListTTL. It may be far longer than values live: a page in the shared
// tier is served only while every version it was kept with is current
// (SharedList), and a write that changes what it shows replaces one of
// them before it is answered, so expiry is not what keeps it fresh; it
// only bounds the tier's memory. Each node keeps the pages it serves in
// its own memory for ListTTL, then reads them from the tier again. With
// the value ttl (30 min) the long tail's pages, read less often than
// that, missed on every read past it (docs/stage5.md, ninth round).
func WithSharedListTTL(d time.Duration) Option {
	return func(s *Service) { s.sharedListTTL = d }
}

// sharedTTL is how long to keep a page in the shared tier now (spread as
// ListTTL spreads).
func (s *Service) sharedTTL() time.Duration {
	if s.sharedListTTL <= 0 || !s.listsOn {
		return s.ListTTL()
	}
	return s.sharedListTTL - mrand.N(s.sharedListTTL/5+1)
}

// cachedList returns the anonymous first page f (key: listKey) from this
// node's list cache, else from the shared tier, else from the database,
// keeping it in both. While this node cannot tell whether it heard of
// every write, it reads the database and keeps nothing (a miss too).
//
// A kept page's favorites counts are those of when it was read: a favorite
// does not drop the pages showing the article (only the favoriter's
// favorites list, whose members change), so a kept page is served with
// each article's current count, read as Article reads it (withCurrentCounts).
func (s *Service) cachedList(ctx context.Context, key string, f ArticleFilter) (ArticlePage, error) {
	if !s.listsSynced(ctx) {
		s.listMisses.Add(1)
		return s.store.ListArticles(ctx, 0, f)
	}
	e, ok, gen := s.lists.Get(key)
	if ok && s.ledger.fresh(e.stamp, e.deps) {
		if page, err := s.withCurrentCounts(ctx, e.page); err == nil {
			s.listHits.Add(1)
			e.served.Store(true)
			return page, nil
		}
	}
	sharedKey := sharedListKey(key)
	if b, deps, stamp, ok := s.SharedList(ctx, sharedKey); ok {
		var kept ArticlePage
		if json.Unmarshal(b, &kept) == nil {
			if page, err := s.withCurrentCounts(ctx, kept); err == nil {
				s.listHits.Add(1)
				s.lists.PutFor(key, servedEntry(kept, stamp, deps, f), gen, s.ListTTL())
				return page, nil
			}
		}
	}
	s.listMisses.Add(1)
	// The page is kept: read it fresh (see Fresh), after the stamp.
	stamp := s.ledger.stamp()
	page, err := s.store.ListArticles(Fresh(ctx), 0, f)
	if err != nil {
		return page, err
	}
	deps := depsOfKeys(ListKeys(f, page))
	s.lists.PutFor(key, servedEntry(page, stamp, deps, f), gen, s.ListTTL())
	if b, err := json.Marshal(page); err == nil {
		s.KeepShared(ctx, sharedKey, b, stamp, deps)
	}
	return page, nil
}

// sharedListKey is the shared-tier key of the list page key. The "2:"
// names this format, kept without depending on favorites counts: nodes of
// the version before read "listpage:<key>" and expect a favorite to drop
// the pages showing the article, so the two never share pages.
func sharedListKey(key string) string { return "listpage:2:" + key }

// withCurrentCounts returns kept with each article's current favorites
// count (favoritesCounts, fenced like any cached read: one that begins
// after a favorite was acknowledged on any node sees it), in a copy: kept
// is shared by every reader of the page. A page kept in a list cache does
// not depend on the counts (a favorite drops none of the pages showing
// the article), so the count it was read with may be old.
func (s *Service) withCurrentCounts(ctx context.Context, kept ArticlePage) (ArticlePage, error) {
	ids := make([]int64, len(kept.Articles))
	for i, a := range kept.Articles {
		ids[i] = a.ID
	}
	counts, err := s.favoritesCounts(ctx, ids)
	if err != nil {
		return ArticlePage{}, err
	}
	page := kept
	page.Articles = make([]Article, len(kept.Articles))
	for i, a := range kept.Articles {
		a.FavoritesCount = counts[i]
		page.Articles[i] = a
	}
	return page, nil
}

// manyLoader is implemented by caches that fill many missing keys with
// one load, storing each value under the conditions GetOrLoad stores
// under (cache.Memory, Coherent and Redis).
type manyLoader interface {
	GetOrLoadMany(ctx context.Context, keys []string, ttl time.Duration, load func(missing []string) (map[string][]byte, error)) (map[string][]byte, error)
}

// favoritesCounts is favoritesCount for each article in ids, with the
// counts the cache misses read in one statement (Store.FavoritesCounts):
// on a page of the long tail every count may be cold, and twenty loads of
// one row each were most of what serving a kept page cost the database.
// The keys and values are favoritesCount's, so the two share what they
// store. An article that no longer exists is ErrNotFound, as there.
func (s *Service) favoritesCounts(ctx context.Context, ids []int64) ([]int, error) {
	ml, ok := s.cache.(manyLoader)
	if !ok {
		counts := make([]int, len(ids))
		for i, id := range ids {
			n, err := s.favoritesCount(ctx, id)
			if err != nil {
				return nil, err
			}
			counts[i] = n
		}
		return counts, nil
	}
	return loadMany(ctx, ml, s.entryTTL(), ids, keyFavorites,
		func(missing []int64) (map[int64]int, error) {
			// Fresh, as cached loads: the counts are kept for minutes.
			return s.store.FavoritesCounts(Fresh(ctx), missing)
		},
		func(id int64) (int, error) {
			// Not what this version stores: read the database (as cached).
			return s.store.FavoritesCount(Fresh(ctx), id)
		})
}

// loadMany is the value of each of ids as the cache keeps it under
// key(id), in the order of ids: what the cache misses is loaded by one
// call of load, JSON-encoded and kept under GetOrLoadMany's conditions. An
// id load does not return is ErrNotFound (deleted meanwhile); a kept value
// this version cannot decode (written by another) is read again by reread.
func loadMany[V any](ctx context.Context, ml manyLoader, ttl time.Duration, ids []int64, key func(int64) string,
	load func(missing []int64) (map[int64]V, error), reread func(id int64) (V, error)) ([]V, error) {
	keys := make([]string, len(ids))
	idOf := make(map[string]int64, len(ids))
	for i, id := range ids {
		keys[i] = key(id)
		idOf[keys[i]] = id
	}
	got, err := ml.GetOrLoadMany(ctx, keys, ttl, func(missing []string) (map[string][]byte, error) {
		want := make([]int64, len(missing))
		for i, k := range missing {
			want[i] = idOf[k]
		}
		loaded, err := load(want)
		if err != nil {
			return nil, err
		}
		out := make(map[string][]byte, len(loaded))
		for id, v := range loaded {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			out[key(id)] = b
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	vals := make([]V, len(ids))
	for i, k := range keys {
		b, ok := got[k]
		if !ok {
			return nil, ErrNotFound
		}
		if json.Unmarshal(b, &vals[i]) != nil {
			if vals[i], err = reread(ids[i]); err != nil {
				return nil, err
			}
		}
	}
	return vals, nil
}
