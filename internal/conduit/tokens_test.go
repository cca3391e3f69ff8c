package conduit_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// token is a verified token of u at generation gen, issued now.
func token(u conduit.User, gen int64, id string) conduit.Token {
	now := time.Now()
	return conduit.Token{UserID: u.ID, Gen: gen, ID: id, IssuedAt: now, Expires: now.Add(time.Hour)}
}

func wantAuth(t *testing.T, svc *conduit.Service, tok conduit.Token, ok bool) {
	t.Helper()
	u, err := svc.Authenticate(context.Background(), tok)
	switch {
	case ok && (err != nil || u.ID != tok.UserID):
		t.Errorf("token %s (gen %d) of user %d: %+v, %v; want it accepted", tok.ID, tok.Gen, tok.UserID, u, err)
	case !ok && !errors.Is(err, conduit.ErrUnauthenticated):
		t.Errorf("token %s (gen %d) of user %d: %v; want ErrUnauthenticated", tok.ID, tok.Gen, tok.UserID, err)
	}
}

// Tokens are revoked by a password change, by signing out everywhere, and
// one by one by signing out; other updates leave them working; a token of
// a user who no longer exists, or issued before the account was made, is
// refused. With a cache without tombstones too: every revocation
// invalidates the cached account.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	eachService(t, func(t *testing.T, svc *conduit.Service, _ statsCache) {
		ctx := context.Background()
		u := mustRegister(t, svc, "revoker")
		if u.TokenGen != 0 {
			t.Fatalf("new user at generation %d", u.TokenGen)
		}
		first := token(u, 0, "first")
		wantAuth(t, svc, first, true) // cached from here on
		if got, err := svc.User(ctx, u.ID); err != nil || got.PasswordHash != "" || got.Email != u.Email {
			t.Errorf("User = %+v, %v; want the user without password hash", got, err)
		}

		if _, err := svc.UpdateUser(ctx, u.ID, conduit.UserPatch{Bio: ptr("still me")}); err != nil {
			t.Fatal(err)
		}
		wantAuth(t, svc, first, true)

		changed, err := svc.UpdateUser(ctx, u.ID, conduit.UserPatch{Password: ptr("a new password")})
		if err != nil {
			t.Fatal(err)
		}
		if changed.TokenGen != 1 || changed.PasswordHash != "" {
			t.Fatalf("after a password change: gen %d, hash %q; want 1 and none", changed.TokenGen, changed.PasswordHash)
		}
		wantAuth(t, svc, first, false)
		second := token(u, 1, "second")
		wantAuth(t, svc, second, true)
		if in, err := svc.Login(ctx, conduit.SignIn{Email: u.Email, Password: "a new password"}); err != nil || in.TokenGen != 1 {
			t.Errorf("login after the change: gen %d, %v; want 1", in.TokenGen, err)
		}

		if err := svc.SignOutEverywhere(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		wantAuth(t, svc, second, false)
		third, fourth := token(u, 2, "third"), token(u, 2, "fourth")
		wantAuth(t, svc, third, true)
		wantAuth(t, svc, fourth, true)

		if err := svc.SignOut(ctx, third); err != nil {
			t.Fatal(err)
		}
		wantAuth(t, svc, third, false)
		wantAuth(t, svc, fourth, true)
		if err := svc.SignOut(ctx, third); err != nil {
			t.Errorf("signing out twice: %v", err)
		}
		if err := svc.SignOut(ctx, second); err != nil {
			t.Errorf("signing out with a token of an old generation: %v", err)
		}

		wantAuth(t, svc, conduit.Token{UserID: u.ID + 1000, ID: "ghost", IssuedAt: time.Now(), Expires: time.Now().Add(time.Hour)}, false)
		old := fourth
		old.IssuedAt = time.Now().Add(-time.Hour)
		wantAuth(t, svc, old, false)
		if err := svc.SignOut(ctx, conduit.Token{UserID: u.ID + 1000, ID: "ghost"}); err != nil {
			t.Errorf("signing out a user who is gone: %v", err)
		}
	})
}

// userReads counts the reads of a user record that reach the database.
type userReads struct {
	conduit.Store
	n atomic.Int64
}

func (s *userReads) UserByID(ctx context.Context, id int64) (conduit.User, error) {
	s.n.Add(1)
	return s.Store.UserByID(ctx, id)
}

func (s *userReads) RevokedTokens(ctx context.Context, id int64, now time.Time) ([]string, error) {
	s.n.Add(1)
	return s.Store.RevokedTokens(ctx, id, now)
}

// The check on every request, and the signed-in user's own record, are
// read from the cache: no query per request while it holds the account.
func TestAuthenticateFromCache(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := &userReads{Store: db}
		svc := conduit.NewService(st, cache.NewMemory(100).WithHold(0), auth.Bcrypt{Cost: 4})
		u := mustRegister(t, svc, "cached")
		tok := token(u, 0, "t")
		wantAuth(t, svc, tok, true)
		before := st.n.Load()
		for range 50 {
			wantAuth(t, svc, tok, true)
			if _, err := svc.User(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		if n := st.n.Load() - before; n != 0 {
			t.Errorf("50 checks and reads of the user ran %d queries, want 0", n)
		}
		if err := svc.SignOut(ctx, tok); err != nil {
			t.Fatal(err)
		}
		wantAuth(t, svc, tok, false)
	})
}

// Signing out keeps a revocation per token until it expires; beyond a
// bound, signing out signs out everywhere instead, so the list checked on
// every request stays short.
func TestSignOutBounded(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		u := mustRegister(t, svc, "many")
		keep := token(u, 0, "keep")
		for i := range 32 {
			if err := svc.SignOut(ctx, token(u, 0, fmt.Sprint("out-", i))); err != nil {
				t.Fatal(err)
			}
		}
		wantAuth(t, svc, keep, true)
		if ids, _ := db.RevokedTokens(ctx, u.ID, time.Now()); len(ids) != 32 {
			t.Fatalf("%d revocations, want 32", len(ids))
		}
		if err := svc.SignOut(ctx, token(u, 0, "one-more")); err != nil {
			t.Fatal(err)
		}
		wantAuth(t, svc, keep, false)
		wantAuth(t, svc, token(u, 1, "new"), true)
		if ids, _ := db.RevokedTokens(ctx, u.ID, time.Now()); len(ids) != 0 {
			t.Errorf("%d revocations after signing out everywhere, want 0", len(ids))
		}
	})
}
