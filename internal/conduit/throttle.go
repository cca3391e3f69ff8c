package conduit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"time"
)

// AttemptCounter counts attempts per key in fixed windows, in storage that
// every node shares (the database), so the limits hold for a whole
// cluster. Keys are opaque.
type AttemptCounter interface {
	// Attempts returns the windows of keys still open at now; keys
	// without one are absent.
	Attempts(ctx context.Context, keys []string, now time.Time) (map[string]AttemptWindow, error)
	// AddAttempts adds delta to each key's count, first opening a window
	// of the given length at now for a key whose window is over, and
	// returns the new windows. Counts never go below zero.
	AddAttempts(ctx context.Context, keys []string, delta int, window time.Duration, now time.Time) (map[string]AttemptWindow, error)
	// PurgeAttempts deletes the windows that ended by now.
	PurgeAttempts(ctx context.Context, now time.Time) (int64, error)
}

// AttemptWindow is the count of one key in its current window.
type AttemptWindow struct {
	Count   int
	ResetAt time.Time
}

// ThrottleLimits bound sign-in and sign-up attempts (docs/security.md,
// "Throttling"). A zero limit turns its rule off.
type ThrottleLimits struct {
	LoginWindow time.Duration
	// LoginPerAddr is how many failed sign-ins one client address may
	// make per window, to any accounts.
	LoginPerAddr int
	// LoginPerAccount is how many failed sign-ins an account may take per
	// window before it is protected: from then on, until the window ends,
	// only addresses without a failed sign-in of their own in their window
	// may try it. The owner signing in from a clean address is never
	// locked out by someone else's guessing.
	LoginPerAccount int

	SignupWindow time.Duration
	// SignupPerAddr is how many sign-ups one client address may attempt
	// per window.
	SignupPerAddr int
}

// Option configures optional parts of a Service.
type Option func(*Service)

// WithThrottle limits sign-in and sign-up attempts, counted in c.
func WithThrottle(c AttemptCounter, l ThrottleLimits) Option {
	return func(s *Service) { s.throttle = &throttle{counter: c, limits: l} }
}

// throttle applies ThrottleLimits.
type throttle struct {
	counter AttemptCounter
	limits  ThrottleLimits
}

// clientNet is what the address rules count for a client address: the
// address itself for IPv4, its /64 network for IPv6, since one subscriber
// commonly holds a whole /64 and could otherwise take a fresh address for
// every attempt.
func clientNet(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if a = a.Unmap().WithZone(""); a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// attemptKey names what a rule counts. Hashing keeps addresses and emails
// (and whatever an attacker typed as one) out of the table, at a fixed size.
func attemptKey(rule, value string) string {
	h := sha256.Sum256([]byte(rule + "\x00" + value))
	return hex.EncodeToString(h[:16])
}

// admitLogin decides whether a sign-in from addr to the account email may
// check its password. An admitted attempt is counted as a failure in
// advance, so that a burst of concurrent attempts cannot all pass the
// limits while their passwords are being checked; settle(err) takes it
// back unless the password was wrong.
func (t *throttle) admitLogin(ctx context.Context, addr, email string, now time.Time) (settle func(error), err error) {
	none := func(error) {}
	if t == nil || (t.limits.LoginPerAddr <= 0 && t.limits.LoginPerAccount <= 0) {
		return none, nil
	}
	l := t.limits
	addrKey, acctKey := attemptKey("login-addr", clientNet(addr)), attemptKey("login-account", email)
	keys := []string{addrKey, acctKey}
	// A refused attempt costs a read, not a write: under attack most are.
	ws, err := t.counter.Attempts(ctx, keys, now)
	if err != nil {
		return none, err
	}
	if err := t.loginRefusal(ws[addrKey], ws[acctKey], now); err != nil {
		return none, err
	}
	if ws, err = t.counter.AddAttempts(ctx, keys, 1, l.LoginWindow, now); err != nil {
		return none, err
	}
	settle = func(err error) {
		if errors.Is(err, ErrInvalidCredentials) {
			return
		}
		// The context may be ending; the refund still matters.
		_, _ = t.counter.AddAttempts(context.WithoutCancel(ctx), keys, -1, l.LoginWindow, now)
	}
	// Others may have been counted since the read: judge by the counts
	// before this attempt.
	a, b := ws[addrKey], ws[acctKey]
	a.Count--
	b.Count--
	if err := t.loginRefusal(a, b, now); err != nil {
		settle(err) // never checked: it counts nothing
		return none, err
	}
	return settle, nil
}

// loginRefusal applies the sign-in rules to the counts of the client's
// address and of the account before this attempt.
func (t *throttle) loginRefusal(addr, account AttemptWindow, now time.Time) error {
	l := t.limits
	if l.LoginPerAddr > 0 && addr.Count >= l.LoginPerAddr {
		return throttled("sign-in", addr, now)
	}
	if l.LoginPerAccount > 0 && account.Count >= l.LoginPerAccount && addr.Count > 0 {
		return throttled("sign-in", account, now)
	}
	return nil
}

// admitSignup counts a sign-up attempt from addr, or refuses it.
func (t *throttle) admitSignup(ctx context.Context, addr string, now time.Time) error {
	if t == nil || t.limits.SignupPerAddr <= 0 {
		return nil
	}
	key := []string{attemptKey("signup-addr", clientNet(addr))}
	ws, err := t.counter.Attempts(ctx, key, now)
	if err != nil {
		return err
	}
	if w := ws[key[0]]; w.Count >= t.limits.SignupPerAddr {
		return throttled("sign-up", w, now)
	}
	if ws, err = t.counter.AddAttempts(ctx, key, 1, t.limits.SignupWindow, now); err != nil {
		return err
	}
	if w := ws[key[0]]; w.Count > t.limits.SignupPerAddr {
		_, _ = t.counter.AddAttempts(context.WithoutCancel(ctx), key, -1, t.limits.SignupWindow, now)
		return throttled("sign-up", w, now)
	}
	return nil
}

// throttled is the error for a refused attempt: it may be tried again
// when w ends (in whole seconds, at least one).
func throttled(what string, w AttemptWindow, now time.Time) error {
	wait := max(w.ResetAt.Sub(now), time.Second)
	return &ThrottledError{What: what, RetryAfter: (wait + time.Second - 1).Truncate(time.Second)}
}
