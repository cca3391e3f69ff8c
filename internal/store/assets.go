package store

import (
	"context"
	"time"
)

// PutAsset keeps a fingerprinted static file of this build, or marks one
// kept before as still in use (seen now). A file's name holds the hash of
// its content, so a name stored once never needs its body replaced.
func (db *DB) PutAsset(ctx context.Context, file, contentType string, body []byte, now time.Time) error {
	_, err := db.execWrite(ctx, `INSERT INTO static_assets (file, content_type, body, seen_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (file) DO UPDATE SET seen_at = excluded.seen_at`, file, contentType, body, now.Unix())
	return err
}

// Asset returns a kept static file; conduit.ErrNotFound if there is none.
func (db *DB) Asset(ctx context.Context, file string) (contentType string, body []byte, err error) {
	err = db.queryRow(ctx, `SELECT content_type, body FROM static_assets WHERE file = ?`, file).Scan(&contentType, &body)
	return contentType, body, db.mapErr(err)
}

// ForgetAssets deletes the static files no running build has marked since
// before.
func (db *DB) ForgetAssets(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.execWrite(ctx, `DELETE FROM static_assets WHERE seen_at < ?`, before.Unix())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
