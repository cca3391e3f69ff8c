package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// The token generation only grows: a password change and RevokeTokens
// raise it, other updates keep it, and an update made from a copy of the
// user read before a revocation does not undo it.
func TestTokenGeneration(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := mkUser(t, db, "gen")
		if u.TokenGen != 0 {
			t.Fatalf("new user at generation %d", u.TokenGen)
		}
		stale := u
		u.Bio = "changed"
		if err := db.UpdateUser(ctx, &u, false); err != nil || u.TokenGen != 0 {
			t.Fatalf("plain update: gen %d, %v; want 0", u.TokenGen, err)
		}
		u.PasswordHash = "new hash"
		if err := db.UpdateUser(ctx, &u, true); err != nil || u.TokenGen != 1 {
			t.Fatalf("password update: gen %d, %v; want 1", u.TokenGen, err)
		}
		if err := db.RevokeTokens(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateUser(ctx, &stale, false); err != nil || stale.TokenGen != 2 {
			t.Fatalf("update from a copy read at generation 0: gen %d, %v; want 2", stale.TokenGen, err)
		}
		got, err := db.UserByID(ctx, u.ID)
		if err != nil || got.TokenGen != 2 {
			t.Fatalf("stored gen %d, %v; want 2", got.TokenGen, err)
		}
		if byEmail, _ := db.UserByEmail(ctx, u.Email); byEmail.TokenGen != 2 {
			t.Errorf("UserByEmail gen %d, want 2", byEmail.TokenGen)
		}
		wantNotFound(t, db.RevokeTokens(ctx, u.ID+1000))

		// Concurrent revocations are all counted.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if err := db.RevokeTokens(ctx, u.ID); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got, _ := db.UserByID(ctx, u.ID); got.TokenGen != 10 {
			t.Errorf("after 8 concurrent revocations gen %d, want 10", got.TokenGen)
		}
	})
}

// Single revocations are listed until the token expires, and are dropped
// when every token of the user is revoked.
func TestRevokedTokens(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a, b := mkUser(t, db, "rev_a"), mkUser(t, db, "rev_b")
		t0 := time.Now()
		for _, r := range []struct {
			user    int64
			id      string
			expires time.Time
		}{
			{a.ID, "live-1", t0.Add(time.Hour)},
			{a.ID, "live-2", t0.Add(2 * time.Hour)},
			{a.ID, "live-1", t0.Add(time.Hour)}, // again: no change
			{a.ID, "gone", t0.Add(-time.Second)},
			{b.ID, "other", t0.Add(time.Hour)},
		} {
			if err := db.RevokeToken(ctx, r.user, r.id, r.expires); err != nil {
				t.Fatalf("revoke %s: %v", r.id, err)
			}
		}
		ids, err := db.RevokedTokens(ctx, a.ID, t0)
		if err != nil || !slices.Equal(ids, []string{"live-1", "live-2"}) {
			t.Fatalf("revoked of a: %q, %v", ids, err)
		}
		if ids, _ := db.RevokedTokens(ctx, a.ID, t0.Add(90*time.Minute)); !slices.Equal(ids, []string{"live-2"}) {
			t.Errorf("revoked of a later: %q", ids)
		}
		wantNotFound(t, db.RevokeToken(ctx, b.ID+1000, "x", t0.Add(time.Hour)))

		n, err := db.PurgeRevokedTokens(ctx, t0.Add(90*time.Minute))
		if err != nil || n != 3 { // live-1, gone and other
			t.Errorf("purged %d, %v; want 3", n, err)
		}
		if err := db.RevokeTokens(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if ids, _ := db.RevokedTokens(ctx, a.ID, t0); len(ids) != 0 {
			t.Errorf("revoked of a after revoking all: %q, want none", ids)
		}
		u := a
		if err := db.RevokeToken(ctx, u.ID, "again", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateUser(ctx, &u, true); err != nil {
			t.Fatal(err)
		}
		if ids, _ := db.RevokedTokens(ctx, a.ID, t0); len(ids) != 0 {
			t.Errorf("revoked of a after a password change: %q, want none", ids)
		}
	})
}

// Attempt windows: counted, shared, reset when over, never negative, and
// purged once ended.
func TestAttempts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t0 := time.UnixMilli(time.Now().UnixMilli())
		const w = time.Minute
		ws, err := db.AddAttempts(ctx, []string{"k2", "k1", "k1"}, 1, w, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != 2 || ws["k1"].Count != 1 || !ws["k1"].ResetAt.Equal(t0.Add(w)) {
			t.Fatalf("first attempt: %+v", ws)
		}
		ws, _ = db.AddAttempts(ctx, []string{"k1"}, 1, w, t0.Add(time.Second))
		if ws["k1"].Count != 2 || !ws["k1"].ResetAt.Equal(t0.Add(w)) {
			t.Errorf("second attempt in the window: %+v", ws["k1"])
		}
		got, err := db.Attempts(ctx, []string{"k1", "k2", "k3"}, t0.Add(time.Second))
		if err != nil || len(got) != 2 || got["k1"].Count != 2 || got["k2"].Count != 1 {
			t.Errorf("Attempts = %+v, %v", got, err)
		}
		ws, _ = db.AddAttempts(ctx, []string{"k2"}, -1, w, t0.Add(time.Second))
		if ws["k2"].Count != 0 {
			t.Errorf("refund: %+v", ws["k2"])
		}
		ws, _ = db.AddAttempts(ctx, []string{"k2"}, -1, w, t0.Add(time.Second))
		if ws["k2"].Count != 0 {
			t.Errorf("refund below zero: %+v", ws["k2"])
		}

		// After the window: nothing counted, and a new window opens.
		later := t0.Add(w)
		if got, _ := db.Attempts(ctx, []string{"k1"}, later); len(got) != 0 {
			t.Errorf("ended window still counts: %+v", got)
		}
		ws, _ = db.AddAttempts(ctx, []string{"k1"}, 1, w, later)
		if ws["k1"].Count != 1 || !ws["k1"].ResetAt.Equal(later.Add(w)) {
			t.Errorf("attempt after the window: %+v", ws["k1"])
		}
		n, err := db.PurgeAttempts(ctx, later)
		if err != nil || n != 1 { // k2; k1 has a new window
			t.Errorf("purged %d, %v; want 1", n, err)
		}

		// Concurrent attempts (as from several nodes) are all counted.
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				if _, err := db.AddAttempts(ctx, []string{"burst", fmt.Sprintf("other-%d", i%3)}, 1, w, later); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got, _ := db.Attempts(ctx, []string{"burst"}, later); got["burst"].Count != 40 {
			t.Errorf("40 concurrent attempts counted %d", got["burst"].Count)
		}
	})
}
