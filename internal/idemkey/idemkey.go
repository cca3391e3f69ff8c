// Package idemkey is what the database keeps for an Idempotency-Key, and
// the claim by which a request's write transactions mark its key applied.
// It is shared by the HTTP middleware (internal/idempotency) and the store
// (internal/store), and has no HTTP in it: the persistence layer does not
// depend on middleware.
//
// Exactly-once holds even when a node dies mid-request: an attempt owns the
// key through a random token, and every write transaction of the request
// marks the key "applied" in the same transaction, checking the token (see
// WithClaim). A repeat takes over an abandoned attempt only if nothing was
// applied, and the abandoned attempt can then no longer commit.
package idemkey

import (
	"context"
	"errors"
	"time"
)

// Key identifies one logical request: the same key from the same user for
// the same method and path.
type Key struct {
	UserID int64 // 0 for anonymous requests
	Key    string
	Method string
	Path   string
}

// Attempt is one try at running a keyed request.
type Attempt struct {
	Key
	Fingerprint string    // hash of the body; a repeat must match it
	Token       string    // random; identifies this attempt
	Now         time.Time // the clock, for expiry and locks
	LockFor     time.Duration
	TTL         time.Duration
}

// Response is what is stored and replayed.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Outcome says what to do with an attempt.
type Outcome int

const (
	Run      Outcome = iota // the attempt owns the key: run the request
	Replay                  // a response is stored: send it again
	InFlight                // another attempt is running now
	Mismatch                // the key was used for a different request body
	Lost                    // an abandoned attempt applied a write but never stored its response
)

// ErrClaimLost is returned by a write transaction whose attempt no longer
// owns its key (it was taken over after being presumed dead).
var ErrClaimLost = errors.New("idempotency key was taken over by another attempt")

// Claim is an attempt's hold on its key. The middleware puts it in the
// request context; the store marks it applied in every write transaction
// run with that context.
type Claim struct {
	Key
	Token string
}

type claimKey struct{}

// WithClaim attaches a claim to ctx.
func WithClaim(ctx context.Context, c Claim) context.Context {
	return context.WithValue(ctx, claimKey{}, c)
}

// ClaimFrom returns the claim in ctx, if any.
func ClaimFrom(ctx context.Context) (Claim, bool) {
	c, ok := ctx.Value(claimKey{}).(Claim)
	return c, ok
}
