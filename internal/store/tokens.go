package store

import (
	"context"
	"time"
)

// RevokeTokens increases the user's token generation, revoking every token
// issued before, and drops the user's single revocations, which that makes
// moot.
func (db *DB) RevokeTokens(ctx context.Context, userID int64) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.exec(ctx, `UPDATE users SET token_gen = token_gen + 1 WHERE id = ?`, userID)
		if err := mustAffect(res, err); err != nil {
			return err
		}
		_, err = tx.exec(ctx, `DELETE FROM revoked_tokens WHERE user_id = ?`, userID)
		return err
	})
}

// RevokeToken records that one token of the user is revoked until it
// expires; revoking it again changes nothing. The user's revocations that
// have expired are forgotten on the way, so a user's rows stay few.
func (db *DB) RevokeToken(ctx context.Context, userID int64, tokenID string, expires time.Time) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		if _, err := tx.exec(ctx, `DELETE FROM revoked_tokens WHERE user_id = ? AND expires_at <= ?`,
			userID, time.Now().UnixMilli()); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `
			INSERT INTO revoked_tokens (user_id, token_id, expires_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, userID, tokenID, expires.UnixMilli())
		return err
	})
}

// RevokedTokens lists the ids of the user's revoked tokens that have not
// expired by now.
func (db *DB) RevokedTokens(ctx context.Context, userID int64, now time.Time) ([]string, error) {
	rs, err := db.query(ctx, `SELECT token_id FROM revoked_tokens WHERE user_id = ? AND expires_at > ? ORDER BY token_id`,
		userID, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var ids []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, db.mapErr(err)
		}
		ids = append(ids, id)
	}
	return ids, db.mapErr(rs.Err())
}

// PurgeRevokedTokens deletes revocations of tokens that expired by now
// and returns how many.
func (db *DB) PurgeRevokedTokens(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.execWrite(ctx, `DELETE FROM revoked_tokens WHERE expires_at <= ?`, now.UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
