package store

import "context"

// CheckSearchIndex runs FTS5's integrity check of the SQLite full-text
// index against the articles it indexes: every token of every row must be
// in the index, and nothing else.
func (db *DB) CheckSearchIndex(ctx context.Context) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)`)
	return err
}
