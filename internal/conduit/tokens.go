package conduit

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Token is a sign-in token whose signature has been verified: whose it is,
// the user's token generation when it was issued, its own id, and its
// lifetime. It has the fields of auth.Claims, so one converts to the other.
type Token struct {
	UserID   int64
	Gen      int64
	ID       string
	IssuedAt time.Time
	Expires  time.Time
}

// account is what the cache holds under keyUser: the user without the
// password hash, and the ids of tokens revoked one by one. One record
// serves the author's profile, the signed-in user's own pages and the
// check of every authenticated request, so one invalidation refreshes all
// three, on every node (cache.Coherent) before the write is answered.
type account struct {
	User    User
	Revoked []string
}

func (s *Service) account(ctx context.Context, id int64) (account, error) {
	return cached(ctx, s.cache, s.entryTTL(), keyUser(id), func(ctx context.Context) (account, error) {
		u, err := s.store.UserByID(ctx, id)
		if err != nil {
			return account{}, err
		}
		u.PasswordHash = ""
		revoked, err := s.store.RevokedTokens(ctx, id, s.now())
		return account{User: u, Revoked: revoked}, err
	})
}

// clockSkew is how far the clocks of two nodes may disagree; see
// Authenticate.
const clockSkew = time.Minute

// Authenticate returns the user a verified token signs in, or
// ErrUnauthenticated when the token was revoked: its user no longer
// exists, its generation is not the user's current one (the password was
// changed, or the user signed out everywhere), or it was revoked alone
// (signed out). A token issued before the account was created is refused
// too: it was made for an earlier account with the same id (SQLite may
// give a deleted last row's id to the next one). The check reads the
// cached account, so it costs no query while the cache holds it.
func (s *Service) Authenticate(ctx context.Context, t Token) (User, error) {
	ctx, end := s.span(ctx, "Authenticate")
	defer end()
	a, err := s.account(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrUnauthenticated
	}
	if err != nil {
		return User{}, err
	}
	if t.Gen != a.User.TokenGen || slices.Contains(a.Revoked, t.ID) ||
		t.IssuedAt.Before(a.User.CreatedAt.Add(-clockSkew)) {
		return User{}, ErrUnauthenticated
	}
	return a.User, nil
}

// maxRevoked bounds the single revocations a user has at once (they are
// kept until the tokens expire, and checked on every request). Signing out
// beyond it signs out everywhere instead.
const maxRevoked = 32

// SignOut revokes one token (a browser signing out), on every node.
// Signing out with a token that no longer works is not an error.
func (s *Service) SignOut(ctx context.Context, t Token) error {
	ctx, end := s.span(ctx, "SignOut")
	defer end()
	a, err := s.account(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.Gen != a.User.TokenGen || slices.Contains(a.Revoked, t.ID) {
		return nil
	}
	if len(a.Revoked) >= maxRevoked {
		return s.SignOutEverywhere(ctx, t.UserID)
	}
	if err := s.store.RevokeToken(ctx, t.UserID, t.ID, t.Expires); err != nil {
		return err
	}
	s.cache.Delete(ctx, keyUser(t.UserID))
	return nil
}

// SignOutEverywhere revokes every token of the user, on every node.
func (s *Service) SignOutEverywhere(ctx context.Context, userID int64) error {
	ctx, end := s.span(ctx, "SignOutEverywhere")
	defer end()
	if err := s.store.RevokeTokens(ctx, userID); err != nil {
		return err
	}
	s.cache.Delete(ctx, keyUser(userID))
	return nil
}

// purgeEvery is how often a node deletes ended attempt windows and
// revocations of expired tokens.
const purgeEvery = time.Minute

// housekeep purges the expired rows of the sign-in tables, at most once
// per purgeEvery on this node, on the way through a sign-in or sign-up
// (so no node needs a timer, and a cluster with sign-ins keeps them
// small). Errors are ignored: expired rows count nothing, the purge is
// tried again later, and a database that fails here fails the sign-in
// that follows, which reports it.
func (s *Service) housekeep(ctx context.Context) {
	now := s.now()
	last := s.lastPurge.Load()
	if now.Unix()-last < int64(purgeEvery/time.Second) || !s.lastPurge.CompareAndSwap(last, now.Unix()) {
		return
	}
	_, _ = s.store.PurgeRevokedTokens(ctx, now)
	if s.throttle != nil {
		_, _ = s.throttle.counter.PurgeAttempts(ctx, now)
	}
}
