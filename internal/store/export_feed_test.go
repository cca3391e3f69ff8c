package store

import "context"

// CelebritiesFollowed is how many authors the viewer's feed merges on read
// (the celebrities followed), for picking benchmark viewers.
func (db *DB) CelebritiesFollowed(ctx context.Context, viewerID int64) (int, error) {
	st, err := db.timelineState(ctx, viewerID)
	return len(st.onRead) + len(st.celebs), err
}

// KeepCelebrities turns the cache of the celebrities' newest articles
// (celebcache.go) on, empty, or off: then feed pages read the database as
// before it existed, which is what PostgreSQL does. Not safe while the
// database is in use.
func (db *DB) KeepCelebrities(on bool) {
	db.celebs = nil
	if on {
		db.celebs = newCelebCache()
	}
}

// CelebritiesKept is how many celebrities the cache holds.
func (db *DB) CelebritiesKept() int {
	if db.celebs == nil {
		return 0
	}
	db.celebs.mu.Lock()
	defer db.celebs.mu.Unlock()
	return len(db.celebs.m)
}
