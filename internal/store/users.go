package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

const userColumns = `id, username, email, password_hash, bio, image, token_gen, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (conduit.User, error) {
	var u conduit.User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &u.Bio, &u.Image, &u.TokenGen, &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// CreateUser inserts u and sets its ID. users.username_key, under a unique
// index, is conduit.UsernameKey of the name: the one definition of "the
// same username" that lookups and caches use too.
func (db *DB) CreateUser(ctx context.Context, u *conduit.User) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		err := tx.queryRow(ctx, `
			INSERT INTO users (username, username_key, email, password_hash, bio, image, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING id`,
			u.Username, conduit.UsernameKey(u.Username), u.Email, u.PasswordHash, u.Bio, u.Image, u.CreatedAt, u.UpdatedAt,
		).Scan(&u.ID)
		if err != nil {
			return err
		}
		tx.wroteFor(u.ID) // their first reads come with a token, after an anonymous sign-up
		return newTimeline(ctx, tx, u.ID)
	})
}

// UserByID returns the user with id.
func (db *DB) UserByID(ctx context.Context, id int64) (conduit.User, error) {
	u, err := scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, db.mapErr(err)
}

// ProfilesByID implements conduit.Store: the viewer-independent profiles
// of the users with ids that exist, in one statement.
func (db *DB) ProfilesByID(ctx context.Context, ids []int64) (map[int64]conduit.Profile, error) {
	out := make(map[int64]conduit.Profile, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.query(ctx, `SELECT id, username, bio, image FROM users WHERE id IN (`+placeholders(len(ids))+`)`, anys(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p conduit.Profile
		if err := rows.Scan(&p.ID, &p.Username, &p.Bio, &p.Image); err != nil {
			return nil, db.mapErr(err)
		}
		out[p.ID] = p
	}
	return out, db.mapErr(rows.Err())
}

// UsersByID implements conduit.Store: those of ids that exist, each with
// the ids of its tokens revoked one by one that have not expired by now
// (what RevokedTokens lists), in one statement for them all: the authors
// of a page of comments are loaded together (conduit's commentAuthors).
func (db *DB) UsersByID(ctx context.Context, ids []int64, now time.Time) (map[int64]conduit.User, map[int64][]string, error) {
	users := make(map[int64]conduit.User, len(ids))
	revoked := make(map[int64][]string)
	if len(ids) == 0 {
		return users, revoked, nil
	}
	// A user's row comes once per revoked token (once with none): few, as
	// RevokeToken forgets the expired ones.
	args := append([]any{now.UnixMilli()}, anys(ids)...)
	rows, err := db.query(ctx, `
		SELECT u.id, u.username, u.email, u.bio, u.image, u.token_gen, u.created_at, u.updated_at, r.token_id
		FROM users u
		LEFT JOIN revoked_tokens r ON r.user_id = u.id AND r.expires_at > ?
		WHERE u.id IN (`+placeholders(len(ids))+`)
		ORDER BY u.id, r.token_id`, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var u conduit.User
		var token sql.NullString
		if err := rows.Scan(&u.ID, &u.Username, &u.Email, &u.Bio, &u.Image, &u.TokenGen, &u.CreatedAt, &u.UpdatedAt, &token); err != nil {
			return nil, nil, db.mapErr(err)
		}
		users[u.ID] = u
		if token.Valid {
			revoked[u.ID] = append(revoked[u.ID], token.String)
		}
	}
	return users, revoked, db.mapErr(rows.Err())
}

// UserByEmail returns the user with email, compared byte for byte: the
// service stores and looks up addresses in one canonical form.
func (db *DB) UserByEmail(ctx context.Context, email string) (conduit.User, error) {
	u, err := scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	return u, db.mapErr(err)
}

// UserByUsername returns the user whose name is the same as username (see
// conduit.UsernameKey: for today's names, ASCII case is ignored).
func (db *DB) UserByUsername(ctx context.Context, username string) (conduit.User, error) {
	u, err := scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username_key = ?`, conduit.UsernameKey(username)))
	return u, db.mapErr(err)
}

// UpdateUser writes every field of u but the token generation, which only
// ever grows: it is increased in place when revokeTokens is set (never
// written from u, so that an update racing a revocation cannot undo it)
// and read back into u. Revoking every token also makes the single
// revocations of the user moot.
func (db *DB) UpdateUser(ctx context.Context, u *conduit.User, revokeTokens bool) error {
	bump := 0
	if revokeTokens {
		bump = 1
	}
	return db.tx(ctx, func(tx *sqlTx) error {
		err := tx.queryRow(ctx, `
			UPDATE users
			SET username = ?, username_key = ?, email = ?, password_hash = ?, bio = ?, image = ?, updated_at = ?,
			    token_gen = token_gen + ?
			WHERE id = ?
			RETURNING token_gen`,
			u.Username, conduit.UsernameKey(u.Username), u.Email, u.PasswordHash, u.Bio, u.Image, u.UpdatedAt, bump, u.ID).Scan(&u.TokenGen)
		if err != nil || !revokeTokens {
			return err
		}
		_, err = tx.exec(ctx, `DELETE FROM revoked_tokens WHERE user_id = ?`, u.ID)
		return err
	})
}

// Follow records that followerID follows followeeID; repeating it is a no-op.
func (db *DB) Follow(ctx context.Context, followerID, followeeID int64) error {
	if db.d.name == "postgres" {
		return db.followOnce(ctx, followerID, followeeID)
	}
	return db.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.exec(ctx, `
			INSERT INTO follows (follower_id, followee_id, created_at)
			VALUES (?, ?, CURRENT_TIMESTAMP)
			ON CONFLICT DO NOTHING`, followerID, followeeID)
		if err := mustAffect(res, err); err != nil {
			return ignoreNotFound(err) // followed already: nothing to do
		}
		if err := markPending(ctx, tx, followerID, followeeID); err != nil {
			return err
		}
		return tx.enqueue(ctx, conduit.FollowedJobs(followerID, followeeID))
	})
}

// followOnce is Follow in one PostgreSQL statement instead of five
// (BEGIN, the follow, the timeline's pending mark, the outbox insert,
// COMMIT), sent alone (writeOnce) like a favorite: data-modifying CTEs, in
// which the mark and the jobs depend on the follow having been new, and
// take their rows in the same order as before (the follow's row, then the
// mark's: the mark reads the follow's CTE).
func (db *DB) followOnce(ctx context.Context, followerID, followeeID int64) error {
	values, jargs := jobValues(ctx, conduit.FollowedJobs(followerID, followeeID), "::")
	args := append([]any{followerID, followeeID, followerID, followeeID}, jargs...)
	q := `WITH changed AS (
			INSERT INTO follows (follower_id, followee_id, created_at)
			VALUES (?, ?, CURRENT_TIMESTAMP)
			ON CONFLICT DO NOTHING RETURNING 1),
		pending AS (
			INSERT INTO timeline_pending (user_id, followee_id, version)
			SELECT ?::bigint, ?::bigint, 1 FROM changed
			ON CONFLICT (user_id, followee_id) DO UPDATE SET version = timeline_pending.version + 1
			RETURNING 1),
		queued AS (
			INSERT INTO jobs (kind, key, payload, trace, created_at, run_at)
			SELECT v.* FROM (VALUES ` + values + `) AS v
			WHERE EXISTS (SELECT 1 FROM pending) RETURNING 1)
		SELECT (SELECT count(*) FROM queued)`
	return db.writeOnce(ctx, q, args, func(r *sql.Row, tx *sqlTx) error {
		var n int64
		if err := r.Scan(&n); err != nil {
			return err
		}
		tx.enqueued = n > 0
		return nil
	})
}

// Unfollow removes the follow, if any.
func (db *DB) Unfollow(ctx context.Context, followerID, followeeID int64) error {
	return db.tx(ctx, func(tx *sqlTx) error {
		done, err := unfollow(ctx, tx, followerID, followeeID)
		if err != nil || !done {
			return err
		}
		if err := markPending(ctx, tx, followerID, followeeID); err != nil {
			return err
		}
		return tx.enqueue(ctx, conduit.UnfollowedJobs(followerID, followeeID))
	})
}

// IsFollowing reports whether followerID follows followeeID.
func (db *DB) IsFollowing(ctx context.Context, followerID, followeeID int64) (bool, error) {
	var ok bool
	err := db.queryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = ? AND followee_id = ?)`,
		followerID, followeeID).Scan(&ok)
	return ok, db.mapErr(err)
}
