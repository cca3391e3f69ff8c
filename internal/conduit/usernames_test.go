package conduit_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Names that Go's strings.ToLower, SQLite's lower() (ASCII only) and
// PostgreSQL's lower() (the locale's) fold differently must never make
// one user's profile answer for another's name, or a follow of one reach
// the other, cold cache or warm, on either database. Today's rule
// refuses the non-ASCII ones outright; whatever is accepted is checked.
func TestUsernamesCannotImpersonate(t *testing.T) {
	t.Parallel()
	names := []string{
		"admin", "adm\u0130n", // İ: Go lower-cases it to "i"
		"kelvin", "\u212Aelvin", // the Kelvin sign: Go lower-cases it to "k"
		"Élise", "élise", "e\u0301lise", // case, and the decomposed form
		"Straße", "STRASSE", "ﬁsh", "fish", "ａｄｍｉｎ", // ligature, fullwidth
		"Jake", "JAKE",
	}
	eachService(t, func(t *testing.T, svc *conduit.Service, _ statsCache) {
		ctx := context.Background()
		ids := map[string]int64{} // accepted name -> its user
		for i, name := range names {
			u, err := svc.Register(ctx, conduit.NewUser{Username: name, Email: fmt.Sprintf("u%d@example.com", i), Password: "password1"})
			var ve conduit.ValidationError
			switch {
			case err == nil:
				ids[name] = u.ID
			case !errors.As(err, &ve) || len(ve["username"]) == 0:
				t.Fatalf("register %q: %v", name, err)
			}
		}
		if len(ids) == 0 {
			t.Fatal("no name was accepted")
		}
		follower := mustRegister(t, svc, "follower")
		// Every accepted name answers for its own user, read in one order
		// and then the other, so that each read may meet an entry the
		// other names' reads left in the cache.
		accepted := slices.Sorted(maps.Keys(ids))
		backward := slices.Clone(accepted)
		slices.Reverse(backward)
		for _, order := range [][]string{accepted, backward} {
			for _, name := range order {
				p, err := svc.Profile(ctx, 0, name)
				if err != nil || p.ID != ids[name] {
					t.Errorf("Profile(%q) = user %d (%q), %v; want user %d", name, p.ID, p.Username, err, ids[name])
				}
			}
		}
		for _, name := range accepted {
			if _, err := svc.Follow(ctx, follower.ID, name); err != nil {
				t.Fatal(err)
			}
			for _, other := range accepted {
				p, err := svc.Profile(ctx, follower.ID, other)
				if err != nil {
					t.Fatal(err)
				}
				if want := ids[other] == ids[name]; p.Following != want {
					t.Errorf("after following %q, Profile(%q).Following = %v", name, other, p.Following)
				}
			}
			if _, err := svc.Unfollow(ctx, follower.ID, name); err != nil {
				t.Fatal(err)
			}
		}
		// Same-user spellings differ in ASCII case only.
		if ids["Jake"] == 0 || ids["JAKE"] != 0 {
			t.Errorf("Jake and JAKE: %v", ids)
		}
	})
}

// The username rule: ASCII letters, digits, '_', '-', '.', at least one
// letter or digit, 40 at most; the rest is a 422 on "username".
func TestUsernameRule(t *testing.T) {
	ok := []string{"ci1732000000000000000", "celeb_ci1732000000000000000", "Jake.Smith-2_x", "a", "0", "_a_", "...a", strings.Repeat("x", 40)}
	refused := []string{
		"", " ", ".", "..", "...", "_", "-", "-._", "a b", "a/b", "a?b", "a#b", "a%2Fb", "a~b", "a+b", "Jürgen",
		"adm\u0130n", "\u212Aelvin", "Élise", "ａｄｍｉｎ", "日本", "a\x00", "a\xff", strings.Repeat("x", 41),
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := newService(db)
		ctx := context.Background()
		for i, name := range append(ok, refused...) {
			_, err := svc.Register(ctx, conduit.NewUser{Username: name, Email: fmt.Sprintf("r%d@example.com", i), Password: "password1"})
			var ve conduit.ValidationError
			if slices.Contains(ok, name) {
				if err != nil {
					t.Errorf("register %q: %v", name, err)
				}
			} else if !errors.As(err, &ve) || len(ve["username"]) == 0 {
				t.Errorf("register %q: %v, want a 422 on username", name, err)
			}
		}
		u := mustRegister(t, svc, "renamer")
		for _, name := range refused {
			if _, err := svc.UpdateUser(ctx, u.ID, conduit.UserPatch{Username: ptr(name)}); err == nil {
				t.Errorf("rename to %q accepted", name)
			}
		}
	})
}

// A user whose name stage 1 accepted and today's rule does not keeps it:
// found by its exact spelling, and updates that send the name back
// unchanged (the settings form does) still work; a new name must follow
// the rule.
func TestLegacyUsernameKept(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ts := time.Now().UTC()
		legacy := conduit.User{Username: "Jürgen", Email: "j@example.com", PasswordHash: "x", CreatedAt: ts, UpdatedAt: ts}
		if err := db.CreateUser(ctx, &legacy); err != nil {
			t.Fatal(err)
		}
		svc := newService(db)
		if p, err := svc.Profile(ctx, 0, "Jürgen"); err != nil || p.ID != legacy.ID {
			t.Fatalf("Profile(Jürgen) = %+v, %v", p, err)
		}
		if _, err := svc.Profile(ctx, 0, "JÜRGEN"); !errors.Is(err, conduit.ErrNotFound) {
			t.Fatalf("Profile(JÜRGEN): %v, want not found", err)
		}
		u, err := svc.UpdateUser(ctx, legacy.ID, conduit.UserPatch{Username: ptr("Jürgen"), Bio: ptr("still me")})
		if err != nil || u.Username != "Jürgen" || u.Bio != "still me" {
			t.Fatalf("update keeping the name: %+v, %v", u, err)
		}
		if _, err := svc.UpdateUser(ctx, legacy.ID, conduit.UserPatch{Username: ptr("Jürgen2")}); err == nil {
			t.Fatal("renamed to a name outside the rule")
		}
		if u, err := svc.UpdateUser(ctx, legacy.ID, conduit.UserPatch{Username: ptr("juergen")}); err != nil || u.Username != "juergen" {
			t.Fatalf("rename to a valid name: %+v, %v", u, err)
		}
		if _, err := svc.Profile(ctx, 0, "Jürgen"); !errors.Is(err, conduit.ErrNotFound) {
			t.Fatalf("old name after the rename: %v", err)
		}
	})
}

// Emails are stored and looked up in one canonical form (trimmed, NFC,
// lower case): spellings of one address are one account, and sign in.
// An address stage 1 stored decomposed still signs in as typed.
func TestEmailCanonicalForm(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := newService(db)
		u, err := svc.Register(ctx, conduit.NewUser{Username: "emile", Email: "  \u00c9mile@Example.COM ", Password: "password1"})
		if err != nil || u.Email != "\u00e9mile@example.com" {
			t.Fatalf("register: %+v, %v", u, err)
		}
		for i, email := range []string{"\u00e9mile@example.com", "E\u0301MILE@example.com", "e\u0301mile@EXAMPLE.com"} {
			_, err := svc.Register(ctx, conduit.NewUser{Username: fmt.Sprintf("twin%d", i), Email: email, Password: "password1"})
			var ve conduit.ValidationError
			if !errors.As(err, &ve) || len(ve["email"]) == 0 {
				t.Errorf("register %q: %v, want the email taken", email, err)
			}
			if got, err := svc.Login(ctx, conduit.SignIn{Email: email, Password: "password1"}); err != nil || got.ID != u.ID {
				t.Errorf("login as %q: %d, %v", email, got.ID, err)
			}
		}

		ts := time.Now().UTC()
		legacy := conduit.User{Username: "old", Email: "zo\u0308e@example.com", PasswordHash: "hash:secret", CreatedAt: ts, UpdatedAt: ts}
		if err := db.CreateUser(ctx, &legacy); err != nil {
			t.Fatal(err)
		}
		svc = conduit.NewService(db, cache.NewMemory(10), &recordingHasher{made: map[string]bool{}})
		if got, err := svc.Login(ctx, conduit.SignIn{Email: "Zo\u0308e@example.com", Password: "secret"}); err != nil || got.ID != legacy.ID {
			t.Errorf("login of a decomposed stage-1 address: %d, %v", got.ID, err)
		}
		// Sent back unchanged (the settings form does), it stays as it is.
		if got, err := svc.UpdateUser(ctx, legacy.ID, conduit.UserPatch{Email: ptr(legacy.Email), Bio: ptr("hi")}); err != nil || got.Email != legacy.Email {
			t.Errorf("update sending the stage-1 address back: %q, %v", got.Email, err)
		}
	})
}

func newService(db *store.DB) *conduit.Service {
	return conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
}
