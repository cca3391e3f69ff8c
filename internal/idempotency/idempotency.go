// Package idempotency makes writes safe to repeat. A client (or a load
// balancer retrying on another node) sends a write with an Idempotency-Key
// header; the first attempt runs and its response is stored in the
// database, so any node answers a repeat with that response instead of
// applying the write again.
//
// What is kept for a key, and how a request's writes mark it applied so
// that exactly-once holds when a node dies mid-request, is in
// internal/idemkey, shared with the store.
package idempotency

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/httpx"
	"github.com/conduit-dev/conduit/internal/idemkey"
)

// Header is the request header carrying the key.
const Header = "Idempotency-Key"

// Store keeps keys; internal/store implements it on SQLite and PostgreSQL.
type Store interface {
	// ClaimIdempotencyKey starts an attempt: it inserts the key, or
	// reports what an earlier attempt left (with its response on Replay).
	// Expired keys are replaced and abandoned unapplied attempts taken over.
	ClaimIdempotencyKey(ctx context.Context, a idemkey.Attempt) (idemkey.Outcome, idemkey.Response, error)
	// CompleteIdempotencyKey stores the response of the attempt owning
	// the key (by token).
	CompleteIdempotencyKey(ctx context.Context, k idemkey.Key, token string, r idemkey.Response) error
	// ReleaseIdempotencyKey forgets the key if the attempt applied
	// nothing, so a repeat runs again; it reports whether it did.
	ReleaseIdempotencyKey(ctx context.Context, k idemkey.Key, token string) (bool, error)
}

// Locker takes short locks shared by every node (the Redis cache, with
// --cache-url). With one, a request takes its key's lock before it claims
// the key in the database, so concurrent repeats of a request (a client
// retrying on another node while the first try runs) are answered "in
// flight" without a database write. The database claim stays the
// authority: the lock only turns away requests the claim would turn away,
// and a lock that cannot be asked for falls through to the claim.
type Locker interface {
	// Lock takes name for ttl unless another holder has it (held). An
	// error means it cannot tell.
	Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), held bool, err error)
}

// Options configures the middleware.
type Options struct {
	// Locker, if set, locks keys before the database claims them.
	Locker  Locker
	TTL     time.Duration // how long a key is remembered (default 24 h)
	LockFor time.Duration // after this an unfinished attempt counts as abandoned (default 10 s)
	MaxBody int64         // bodies above this are refused (default 1 MiB)
	// User returns the signed-in user of a request, 0 if anonymous. Keys
	// are per user, so one user can never see another's response; an
	// anonymous request's key is per body.
	User func(r *http.Request) int64
	// WriteError answers the errors the middleware raises (a bad or
	// busy key), in the shape of the surface it runs in front of
	// (default: plain text).
	WriteError httpx.ErrorWriter
	Logger     *slog.Logger
	Now        func() time.Time
}

// Middleware applies idempotency keys to POST, PUT, PATCH and DELETE
// requests that carry the header; others pass straight through.
func Middleware(s Store, o Options) func(http.Handler) http.Handler {
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.LockFor <= 0 {
		o.LockFor = 10 * time.Second
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.User == nil {
		o.User = func(*http.Request) int64 { return 0 }
	}
	if o.WriteError == nil {
		o.WriteError = httpx.PlainError
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Header.Get(Header)
			if key == "" || !isWrite(r.Method) {
				next.ServeHTTP(w, r)
				return
			}
			if !validKey(key) {
				o.WriteError(w, r, conduit.ValidationError{Header: {"must be 1 to 255 printable ASCII characters"}})
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, o.MaxBody+1))
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) || int64(len(body)) > o.MaxBody {
				o.WriteError(w, r, &httpx.Problem{Status: http.StatusRequestEntityTooLarge, Field: "body", Msg: "is too large"})
				return
			}
			if err != nil {
				o.WriteError(w, r, &httpx.Problem{Status: http.StatusBadRequest, Field: "body", Msg: "could not be read"})
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			sum := sha256.Sum256(body)
			fingerprint := hex.EncodeToString(sum[:])
			k := idemkey.Key{UserID: o.User(r), Key: key, Method: r.Method, Path: r.URL.Path}
			if k.UserID == 0 {
				// Anonymous callers (sign-up, sign-in) have no identity to
				// keep their keys apart. Scoped by the body, a key is shared
				// only by callers who send the very same body, password
				// included, so nobody can take another caller's key first.
				k.Key += " " + fingerprint
			}
			a := idemkey.Attempt{
				Key:         k,
				Fingerprint: fingerprint,
				Token:       newToken(),
				Now:         o.Now(),
				LockFor:     o.LockFor,
				TTL:         o.TTL,
			}
			inFlight := func() {
				w.Header().Set("Retry-After", "1")
				o.WriteError(w, r, &httpx.Problem{Status: http.StatusConflict, Field: Header,
					Msg: "is used by a request that is still being processed; retry shortly"})
			}
			if o.Locker != nil {
				unlock, held, err := o.Locker.Lock(r.Context(), lockName(k), o.LockFor)
				if err == nil && held {
					inFlight()
					return
				}
				if err == nil {
					defer unlock() // after the response is stored
				}
			}
			outcome, stored, err := s.ClaimIdempotencyKey(r.Context(), a)
			if err != nil {
				// Whatever the cause, the request may be tried again.
				o.WriteError(w, r, fmt.Errorf("%w: idempotency claim failed: %w", conduit.ErrUnavailable, err))
				return
			}
			switch outcome {
			case idemkey.Replay:
				w.Header().Set("Idempotent-Replayed", "true")
				if stored.ContentType != "" {
					w.Header().Set("Content-Type", stored.ContentType)
				}
				w.WriteHeader(stored.Status)
				w.Write(stored.Body)
				return
			case idemkey.InFlight:
				inFlight()
				return
			case idemkey.Mismatch:
				o.WriteError(w, r, conduit.ValidationError{Header: {"was already used for a different request"}})
				return
			case idemkey.Lost:
				o.WriteError(w, r, &httpx.Problem{Status: http.StatusConflict, Field: Header,
					Msg: "was used by a request that was applied but whose response was lost; read the resource to see the result"})
				return
			}
			claim := idemkey.Claim{Key: a.Key, Token: a.Token}
			rec := httpx.Buffer(w)
			next.ServeHTTP(rec, r.WithContext(idemkey.WithClaim(r.Context(), claim)))
			status := rec.Status()
			if status == 0 {
				status = http.StatusOK
			}
			// Store before answering: once the client has the answer, a
			// repeat must find it. The client may be gone; finish anyway.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
			defer cancel()
			resp := idemkey.Response{Status: status, ContentType: w.Header().Get("Content-Type"), Body: rec.Body()}
			noStore := hasNoStore(w.Header())
			released := false
			if status >= 500 || noStore || k.UserID == 0 {
				// A failure that applied nothing may be retried for real,
				// and so may a request whose answer must not be kept
				// (it carries credentials) if it applied nothing: a
				// sign-in, whose repeat checks the password anew. So may
				// any anonymous request that applied nothing: whoever
				// sends the same body gets the same answer again, and
				// keeping it would let anyone, unthrottled, fill the key
				// table with a row per request for the keys' lifetime.
				released, err = s.ReleaseIdempotencyKey(ctx, claim.Key, claim.Token)
			}
			if !released && err == nil {
				if noStore {
					// Applied, and its answer not kept: repeats are told
					// so, and never get the credentials.
					resp = o.answer(r, &httpx.Problem{Status: http.StatusConflict, Field: Header,
						Msg: "was used by a request that was applied; its answer held credentials and is not kept: read the resource, or sign in, instead"})
				}
				err = s.CompleteIdempotencyKey(ctx, claim.Key, claim.Token, resp)
			}
			if err != nil {
				o.Logger.ErrorContext(r.Context(), "storing idempotent response failed", slog.Any("error", err))
			}
			_ = rec.Send()
		})
	}
}

// lockName names k's lock: a hash, so that what a client typed as a key
// has a bounded size and is not stored in clear.
func lockName(k idemkey.Key) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s\x00%s", k.UserID, k.Method, k.Path, k.Key))
	return hex.EncodeToString(h[:16])
}

// answer is the response err gets from the surface's error writer, for
// storing in place of one that must not be kept.
func (o Options) answer(r *http.Request, err error) idemkey.Response {
	rec := httpx.Detached()
	o.WriteError(rec, r, err)
	status := rec.Status()
	if status == 0 {
		status = http.StatusOK
	}
	return idemkey.Response{Status: status, ContentType: rec.Header().Get("Content-Type"), Body: bytes.Clone(rec.Body())}
}

// hasNoStore reports whether the Cache-Control of h says no-store: the
// answer must not be kept anywhere, for replay neither.
func hasNoStore(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-store") {
				return true
			}
		}
	}
	return false
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
