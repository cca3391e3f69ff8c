package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedStatements bounds a stmtCache. Our queries are a fixed set of
// texts, plus a few families whose text depends on a count (the IN list of
// loadTags, multi-row inserts): at most a few hundred in all. Past the bound
// new texts are run unprepared rather than evicting.
const maxCachedStatements = 512

// stmtCache keeps one *sql.Stmt per query text for a pool, so that a query
// is parsed and planned once per connection instead of on every call.
// (database/sql prepares a Stmt lazily on each connection that runs it.)
// It is used on SQLite, where preparing is a large share of a small
// query's cost; pgx caches prepared statements per connection itself.
type stmtCache struct {
	pool *sql.DB
	mu   sync.RWMutex
	m    map[string]*sql.Stmt
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: make(map[string]*sql.Stmt)}
}

// get returns the prepared statement for q, preparing it on first use, or
// nil when the cache is full.
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.RLock()
	s, ok := c.m[q]
	n := len(c.m)
	c.mu.RUnlock()
	if ok {
		return s, nil
	}
	if n >= maxCachedStatements {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[q]; ok {
		return s, nil
	}
	// PrepareContext checks the text on one connection; other connections
	// prepare it when they first run it.
	s, err := c.pool.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.m[q] = s
	return s, nil
}

// len is the number of cached statements.
func (c *stmtCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// close closes every cached statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for q, s := range c.m {
		err = errors.Join(err, s.Close())
		delete(c.m, q)
	}
	return err
}
