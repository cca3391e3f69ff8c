package store

import "context"

// FavoritesCounts implements conduit.Store: the favorites counters of
// those of ids that exist, in one statement (a list page's counts missed
// by the cache, read together instead of one FavoritesCount each).
func (db *DB) FavoritesCounts(ctx context.Context, ids []int64) (map[int64]int, error) {
	counts := make(map[int64]int, len(ids))
	if len(ids) == 0 {
		return counts, nil // an empty IN list is not SQL
	}
	rs, err := db.query(ctx, `
		SELECT id, favorites_count FROM articles
		WHERE id IN (`+placeholders(len(ids))+`)`,
		anys(ids)...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		var n int
		if err := rs.Scan(&id, &n); err != nil {
			return nil, db.mapErr(err)
		}
		counts[id] = n
	}
	return counts, db.mapErr(rs.Err())
}
