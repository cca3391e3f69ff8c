package store

import "context"

// HoldWriter takes every connection writes can use (SQLite's single
// writer, every connection of the PostgreSQL pool) until release.
func (db *DB) HoldWriter(ctx context.Context) (release func(), err error) {
	if db.pool == nil {
		c, err := db.write.Conn(ctx)
		if err != nil {
			return nil, err
		}
		return func() { c.Close() }, nil
	}
	var held []func()
	release = func() {
		for _, r := range held {
			r()
		}
	}
	for range db.pool.Stat().MaxConns() {
		c, err := db.pool.Acquire(ctx)
		if err != nil {
			release()
			return nil, err
		}
		held = append(held, c.Release)
	}
	return release, nil
}
