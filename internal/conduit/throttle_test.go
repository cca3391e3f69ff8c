package conduit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// fastHasher is a PasswordHasher without the cost, counting the checks:
// each stands for a bcrypt comparison an attacker made us run.
type fastHasher struct{ checks atomic.Int64 }

func (*fastHasher) Hash(p string) (string, error) { return "hash:" + p, nil }

func (h *fastHasher) Check(hash, p string) bool {
	h.checks.Add(1)
	return hash == "hash:"+p
}

var testLimits = conduit.ThrottleLimits{
	LoginWindow: 15 * time.Minute, LoginPerAddr: 10, LoginPerAccount: 5,
	SignupWindow: time.Hour, SignupPerAddr: 3,
}

func throttledService(db *store.DB, h conduit.PasswordHasher) *conduit.Service {
	return conduit.NewService(db, cache.NewMemory(100), h, conduit.WithThrottle(db, testLimits))
}

func login(svc *conduit.Service, email, password, addr string) error {
	_, err := svc.Login(context.Background(), conduit.SignIn{Email: email, Password: password, ClientAddr: addr})
	return err
}

func wantThrottled(t *testing.T, err error, what string) {
	t.Helper()
	var te *conduit.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("%s: %v, want a ThrottledError", what, err)
	}
	if te.RetryAfter < time.Second || te.RetryAfter > testLimits.LoginWindow+time.Second || te.RetryAfter%time.Second != 0 {
		t.Errorf("%s: RetryAfter %v, want whole seconds within the window", what, te.RetryAfter)
	}
}

// 300 wrong passwords in a burst from one address to one account: only
// the first LoginPerAccount are checked at all, the rest are refused; the
// address may spray other accounts up to LoginPerAddr failures, then it is
// refused everywhere. The owner, from another address, still signs in; and
// the counts are shared by every service on the database (every node).
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := &fastHasher{}
		svc, other := throttledService(db, h), throttledService(db, h)
		victim := mustRegister(t, svc, "victim")
		const attacker = "203.0.113.66"

		var wg sync.WaitGroup
		var refused, wrong atomic.Int64
		work := make(chan int)
		for range 20 {
			wg.Go(func() {
				for i := range work {
					err := login(svc, victim.Email, fmt.Sprint("guess-", i), attacker)
					var te *conduit.ThrottledError
					switch {
					case errors.As(err, &te):
						refused.Add(1)
					case errors.Is(err, conduit.ErrInvalidCredentials):
						wrong.Add(1)
					default:
						t.Errorf("guess %d: %v", i, err)
					}
				}
			})
		}
		for i := range 300 {
			work <- i
		}
		close(work)
		wg.Wait()
		if wrong.Load() != int64(testLimits.LoginPerAccount) || h.checks.Load() != int64(testLimits.LoginPerAccount) {
			t.Errorf("%d guesses answered, %d passwords checked; want %d each", wrong.Load(), h.checks.Load(), testLimits.LoginPerAccount)
		}
		if refused.Load() != 300-int64(testLimits.LoginPerAccount) {
			t.Errorf("%d guesses refused, want %d", refused.Load(), 300-testLimits.LoginPerAccount)
		}

		// Spraying other accounts: the address has LoginPerAddr failures in
		// all.
		for i := range 20 {
			err := login(svc, fmt.Sprintf("spray%d@example.com", i), "password1", attacker)
			if i < testLimits.LoginPerAddr-testLimits.LoginPerAccount {
				if !errors.Is(err, conduit.ErrInvalidCredentials) {
					t.Fatalf("spray %d: %v", i, err)
				}
				continue
			}
			wantThrottled(t, err, fmt.Sprint("spray ", i))
		}

		// The attacking address is refused for every account and on every
		// node; the account's owner is not locked out.
		bystander := mustRegister(t, svc, "bystander")
		wantThrottled(t, login(svc, bystander.Email, "password1", attacker), "another account from the attacker")
		wantThrottled(t, login(other, victim.Email, "password1", attacker), "the attacker on another node")
		if err := login(other, victim.Email, "password1", "198.51.100.7"); err != nil {
			t.Errorf("the owner from another address: %v", err)
		}

		// The account has taken more failures than LoginPerAccount: an
		// address that fails on it is refused from then on, one that has
		// not failed may still try.
		if err := login(svc, victim.Email, "typo", "198.51.100.8"); !errors.Is(err, conduit.ErrInvalidCredentials) {
			t.Fatalf("a first wrong password from a new address: %v", err)
		}
		wantThrottled(t, login(other, victim.Email, "password1", "198.51.100.8"), "a failing address on a protected account")
		if err := login(svc, bystander.Email, "password1", "198.51.100.8"); err != nil {
			t.Errorf("the same address on an unprotected account: %v", err)
		}
		if err := login(svc, victim.Email, "password1", "198.51.100.9"); err != nil {
			t.Errorf("a clean address on the protected account: %v", err)
		}
	})
}

// Successful sign-ins do not count: an office behind one address signs in
// all day.
func TestLoginThrottleCountsFailuresOnly(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := throttledService(db, &fastHasher{})
		u := mustRegister(t, svc, "regular")
		const office = "192.0.2.10"
		for i := range 3 * testLimits.LoginPerAddr {
			if err := login(svc, u.Email, "password1", office); err != nil {
				t.Fatalf("sign-in %d: %v", i, err)
			}
		}
		for i := range testLimits.LoginPerAddr {
			if err := login(svc, fmt.Sprintf("nobody%d@example.com", i), "password1", office); !errors.Is(err, conduit.ErrInvalidCredentials) {
				t.Fatalf("wrong sign-in: %v", err)
			}
		}
		wantThrottled(t, login(svc, u.Email, "password1", office), "after the limit")
	})
}

// IPv6 clients are counted per /64 network: taking another address of
// one's own network does not escape the limit.
func TestThrottleCountsIPv6Networks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := throttledService(db, &fastHasher{})
		u := mustRegister(t, svc, "six")
		for i := range testLimits.LoginPerAddr {
			addr := fmt.Sprintf("2001:db8:1:2::%x", i+1)
			if err := login(svc, fmt.Sprintf("nobody%d@example.com", i), "x", addr); !errors.Is(err, conduit.ErrInvalidCredentials) {
				t.Fatalf("guess from %s: %v", addr, err)
			}
		}
		wantThrottled(t, login(svc, u.Email, "password1", "2001:db8:1:2:ffff::1"), "another address of the same /64")
		if err := login(svc, u.Email, "password1", "2001:db8:1:3::1"); err != nil {
			t.Errorf("another /64: %v", err)
		}
		if err := login(svc, u.Email, "password1", "192.0.2.77"); err != nil {
			t.Errorf("an IPv4 client: %v", err)
		}
	})
}

// Sign-ups are limited per address, across nodes.
func TestSignupThrottle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := &fastHasher{}
		svc, other := throttledService(db, h), throttledService(db, h)
		register := func(s *conduit.Service, name, addr string) error {
			_, err := s.Register(context.Background(), conduit.NewUser{
				Username: name, Email: name + "@example.com", Password: "password1", ClientAddr: addr})
			return err
		}
		for i := range testLimits.SignupPerAddr {
			if err := register(svc, fmt.Sprint("bot", i), "203.0.113.5"); err != nil {
				t.Fatal(err)
			}
		}
		err := register(other, "bot-more", "203.0.113.5")
		var te *conduit.ThrottledError
		if !errors.As(err, &te) || te.RetryAfter <= 0 || te.RetryAfter > testLimits.SignupWindow {
			t.Fatalf("sign-up beyond the limit on another node: %v", err)
		}
		if err := register(svc, "human", "198.51.100.1"); err != nil {
			t.Errorf("sign-up from another address: %v", err)
		}
	})
}

// Ended attempt windows and revocations of expired tokens are purged on
// the way through a sign-in: the tables do not grow without bound.
func TestSignInPurges(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := throttledService(db, &fastHasher{})
		u := mustRegister(t, svc, "tidy") // the first sign-up purges once; the next sign-in waits a minute
		past := time.Now().Add(-time.Hour)
		if _, err := db.AddAttempts(ctx, []string{"old-1", "old-2"}, 1, time.Minute, past); err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeToken(ctx, u.ID, "expired", past); err != nil {
			t.Fatal(err)
		}
		fresh := throttledService(db, &fastHasher{}) // another node, or a restart
		if err := login(fresh, u.Email, "password1", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.PurgeAttempts(ctx, time.Now()); n != 0 {
			t.Errorf("%d ended windows left after a sign-in", n)
		}
		if n, _ := db.PurgeRevokedTokens(ctx, time.Now()); n != 0 {
			t.Errorf("%d expired revocations left after a sign-in", n)
		}
	})
}
