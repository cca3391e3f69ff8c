package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/conduit-dev/conduit/internal/idemkey"
)

const idemWhere = `user_id = ? AND idem_key = ? AND method = ? AND path = ?`

func idemArgs(k idemkey.Key, more ...any) []any {
	return append([]any{k.UserID, k.Key, k.Method, k.Path}, more...)
}

// ClaimIdempotencyKey implements idempotency.Store. It needs no
// transaction: the insert is atomic, and the take-over of an abandoned
// attempt is a compare-and-swap on its token that only succeeds while
// nothing was applied.
func (db *DB) ClaimIdempotencyKey(ctx context.Context, a idemkey.Attempt) (idemkey.Outcome, idemkey.Response, error) {
	now := a.Now.UnixMilli()
	lockedUntil := a.Now.Add(a.LockFor).UnixMilli()
	for range 4 {
		res, err := db.execWrite(ctx, `INSERT INTO idempotency_keys
			(user_id, idem_key, method, path, fingerprint, token, locked_until, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			idemArgs(a.Key, a.Fingerprint, a.Token, lockedUntil, a.Now.Add(a.TTL).UnixMilli())...)
		if err != nil {
			return 0, idemkey.Response{}, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return idemkey.Run, idemkey.Response{}, nil
		}

		var (
			fp, token, ctype     string
			locked, exp, applied int64
			status               sql.NullInt64
			body                 []byte
		)
		err = db.primaryRow(ctx, `SELECT fingerprint, token, locked_until, applied, status, content_type, body, expires_at
			FROM idempotency_keys WHERE `+idemWhere, idemArgs(a.Key)...).
			Scan(&fp, &token, &locked, &applied, &status, &ctype, &body, &exp)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // purged between the two statements: insert again
		case err != nil:
			return 0, idemkey.Response{}, db.mapErr(err)
		case exp <= now:
			if _, err := db.execWrite(ctx, `DELETE FROM idempotency_keys WHERE `+idemWhere+` AND expires_at <= ?`,
				idemArgs(a.Key, now)...); err != nil {
				return 0, idemkey.Response{}, err
			}
			continue
		case fp != a.Fingerprint:
			return idemkey.Mismatch, idemkey.Response{}, nil
		case status.Valid:
			return idemkey.Replay, idemkey.Response{Status: int(status.Int64), ContentType: ctype, Body: body}, nil
		case locked > now:
			return idemkey.InFlight, idemkey.Response{}, nil
		case applied != 0:
			return idemkey.Lost, idemkey.Response{}, nil
		}
		// Abandoned before applying anything: take it over, unless
		// someone else just did or the old attempt committed meanwhile.
		res, err = db.execWrite(ctx, `UPDATE idempotency_keys SET token = ?, locked_until = ?
			WHERE `+idemWhere+` AND token = ? AND applied = 0 AND status IS NULL`,
			append([]any{a.Token, lockedUntil}, idemArgs(a.Key, token)...)...)
		if err != nil {
			return 0, idemkey.Response{}, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return idemkey.Run, idemkey.Response{}, nil
		}
	}
	return 0, idemkey.Response{}, fmt.Errorf("idempotency key %q: too much contention", a.Key.Key)
}

// CompleteIdempotencyKey implements idempotency.Store.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, k idemkey.Key, token string, r idemkey.Response) error {
	res, err := db.execWrite(ctx, `UPDATE idempotency_keys SET status = ?, content_type = ?, body = ?, locked_until = 0
		WHERE `+idemWhere+` AND token = ?`,
		append([]any{r.Status, r.ContentType, r.Body}, idemArgs(k, token)...)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return idemkey.ErrClaimLost
	}
	return nil
}

// ReleaseIdempotencyKey implements idempotency.Store.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, k idemkey.Key, token string) (bool, error) {
	res, err := db.execWrite(ctx, `DELETE FROM idempotency_keys WHERE `+idemWhere+` AND token = ? AND applied = 0`,
		idemArgs(k, token)...)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// PurgeIdempotencyKeys deletes keys that expired before now and returns
// how many.
func (db *DB) PurgeIdempotencyKeys(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.execWrite(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= ?`, now.UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// markClaimApplied runs first in every write transaction of a request that
// holds an idempotency claim: it records, atomically with the write, that
// the attempt applied something, and fails the transaction if the attempt
// no longer owns its key.
func markClaimApplied(ctx context.Context, t *sqlTx) error {
	c, ok := idemkey.ClaimFrom(ctx)
	if !ok {
		return nil
	}
	res, err := t.exec(ctx, `UPDATE idempotency_keys SET applied = 1 WHERE `+idemWhere+` AND token = ?`,
		idemArgs(c.Key, c.Token)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return idemkey.ErrClaimLost
	}
	return nil
}

// execWrite runs one statement on the write pool.
func (db *DB) execWrite(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	res, err := db.write.ExecContext(ctx, db.d.rebind(q), args...)
	return res, db.mapErr(err)
}
