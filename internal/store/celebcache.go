package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
)

// celebCache keeps, per celebrity (an author whose articles are merged
// into feeds on read, not fanned out), the ids of the newest articles and
// the article count, as of a version of the author's fanout_authors row
// (SQLite, migration 0018: every insert and delete of a celebrity's
// article raises it in its own transaction). A feed page reads each
// followed celebrity's version with the state it reads anyway, and takes
// the celebrity's articles from here when the kept version is at least
// that one: the same as reading them, without one index range per
// celebrity (8–18 for the benchmark's users) after every commit has
// emptied the reader's page cache. Whoever wrote the article (this process
// or another on the same file), the next page sees the new version.
//
// Versions only grow (the row is never deleted while the server runs; a
// reseed that empties the tables under a running server would also leave
// its other caches stale). The cache holds at most celebCacheMax authors,
// celebKeep ids each: ~0.5 KB per celebrity.
type celebCache struct {
	mu sync.Mutex
	m  map[int64]celebEntry
}

// celebEntry is what the cache keeps of one celebrity.
type celebEntry struct {
	version, count int64
	// ids are the newest article ids, newest first: all of the author's
	// articles if fewer than celebKeep.
	ids []int64
}

const (
	// celebKeep is how many ids an entry keeps: a page of up to 20 at an
	// offset up to 43, or any page of an author with fewer articles.
	celebKeep = 64
	// celebCacheMax bounds the authors kept; past it the others are read
	// from the database as before.
	celebCacheMax = 10_000
)

func newCelebCache() *celebCache { return &celebCache{m: map[int64]celebEntry{}} }

// complete says whether ids are all of the author's articles.
func (e celebEntry) complete() bool { return len(e.ids) < celebKeep }

// newest returns the entry's ids below before (all if before is 0), at most
// n of them, and whether they are the author's newest n there: false when
// the entry holds fewer and the author may have more.
func (e celebEntry) newest(before int64, n int) ([]int64, bool) {
	ids := e.ids
	if before > 0 {
		// The first id below before (ids are newest first).
		i, _ := slices.BinarySearchFunc(ids, before, func(id, b int64) int {
			if id >= b {
				return -1
			}
			return 1
		})
		ids = ids[i:]
	}
	if len(ids) >= n {
		return ids[:n], true
	}
	return ids, e.complete()
}

// celebRef is a followed celebrity as the feed's state statement read it.
type celebRef struct{ id, version int64 }

// celebEntries returns the cache's entry of each celebrity, at its version
// or a newer one, reading those it lacks (or holds older) from the
// database in one statement per celebBranches authors (and keeping them,
// up to celebCacheMax authors). all is false if one was not found (no
// longer a celebrity row: the tables were emptied under the server).
func (db *DB) celebEntries(ctx context.Context, refs []celebRef) (out []celebEntry, all bool, err error) {
	c := db.celebs
	out = make([]celebEntry, len(refs))
	ok := make([]bool, len(refs))
	var missing []int64
	c.mu.Lock()
	for i, r := range refs {
		if e, found := c.m[r.id]; found && e.version >= r.version {
			out[i], ok[i] = e, true
		} else {
			missing = append(missing, r.id)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, true, nil
	}
	loaded := map[int64]celebEntry{}
	for part := range slices.Chunk(missing, celebBranches) {
		if err := db.loadCelebs(ctx, part, loaded); err != nil {
			return nil, false, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range loaded {
		if old, found := c.m[id]; found && old.version >= e.version {
			continue // a newer load stored meanwhile
		}
		if _, found := c.m[id]; found || len(c.m) < celebCacheMax {
			c.m[id] = e
		}
	}
	for i, r := range refs {
		if ok[i] {
			continue
		}
		// What was just read is at least the version the state saw: the
		// version only grows, and it was read after the state.
		e, found := loaded[r.id]
		if !found {
			return nil, false, nil
		}
		out[i] = e
	}
	return out, true, nil
}

// loadCelebs reads the version, count and newest celebKeep article ids of
// each of the authors into into, in one statement: one read transaction,
// so each entry's ids, count and version agree.
func (db *DB) loadCelebs(ctx context.Context, authors []int64, into map[int64]celebEntry) error {
	parts := []string{`
		SELECT c.user_id, 0, c.version, u.articles_count FROM fanout_authors c
		JOIN users u ON u.id = c.user_id
		WHERE c.celebrity = 1 AND c.user_id IN (` + placeholders(len(authors)) + `)`}
	args := anys(authors)
	for _, a := range authors {
		parts = append(parts, `SELECT * FROM (SELECT author_id, 1, id, 0 FROM articles WHERE author_id = ? ORDER BY id DESC LIMIT ?)`)
		args = append(args, a, celebKeep)
	}
	rs, err := db.query(ctx, strings.Join(parts, "\n\t\tUNION ALL "), args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	ids := map[int64][]int64{}
	got := map[int64]celebEntry{}
	for rs.Next() {
		var author, kind, a, b int64
		if err := rs.Scan(&author, &kind, &a, &b); err != nil {
			return db.mapErr(err)
		}
		if kind == 0 {
			got[author] = celebEntry{version: a, count: b}
		} else {
			ids[author] = append(ids[author], a)
		}
	}
	if err := rs.Err(); err != nil {
		return db.mapErr(err)
	}
	for author, e := range got {
		e.ids = ids[author]
		slices.SortFunc(e.ids, func(a, b int64) int { return cmp.Compare(b, a) })
		into[author] = e
	}
	return nil
}
