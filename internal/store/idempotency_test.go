package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/idemkey"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

func attempt(key, fp, token string, at time.Time) idemkey.Attempt {
	return idemkey.Attempt{
		Key:         idemkey.Key{UserID: 7, Key: key, Method: "POST", Path: "/api/articles"},
		Fingerprint: fp, Token: token, Now: at, LockFor: 30 * time.Second, TTL: 24 * time.Hour,
	}
}

func claim(t *testing.T, db *store.DB, a idemkey.Attempt) (idemkey.Outcome, idemkey.Response) {
	t.Helper()
	o, r, err := db.ClaimIdempotencyKey(ctx, a)
	if err != nil {
		t.Fatalf("claim %+v: %v", a.Key, err)
	}
	return o, r
}

func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t0 := time.Now()
		a := attempt("k1", "fp", "tok-a", t0)
		if o, _ := claim(t, db, a); o != idemkey.Run {
			t.Fatalf("first claim: outcome %d, want Run", o)
		}
		// While the first attempt runs, a repeat is told so.
		if o, _ := claim(t, db, attempt("k1", "fp", "tok-b", t0.Add(time.Second))); o != idemkey.InFlight {
			t.Fatalf("repeat while running: outcome %d, want InFlight", o)
		}
		// The same key for another body is refused.
		if o, _ := claim(t, db, attempt("k1", "other", "tok-c", t0)); o != idemkey.Mismatch {
			t.Fatalf("other body: outcome %d, want Mismatch", o)
		}
		// Another user, method or path is another key.
		other := attempt("k1", "fp", "tok-d", t0)
		other.UserID = 8
		if o, _ := claim(t, db, other); o != idemkey.Run {
			t.Fatalf("same key, other user: outcome %d, want Run", o)
		}
		// Only the owner can store the response.
		resp := idemkey.Response{Status: 201, ContentType: "application/json", Body: []byte(`{"article":{}}`)}
		if err := db.CompleteIdempotencyKey(ctx, a.Key, "tok-b", resp); !errors.Is(err, idemkey.ErrClaimLost) {
			t.Fatalf("complete by a non-owner: %v, want ErrClaimLost", err)
		}
		if err := db.CompleteIdempotencyKey(ctx, a.Key, "tok-a", resp); err != nil {
			t.Fatal(err)
		}
		o, got := claim(t, db, attempt("k1", "fp", "tok-e", t0.Add(time.Hour)))
		if o != idemkey.Replay || got.Status != 201 || got.ContentType != resp.ContentType || string(got.Body) != string(resp.Body) {
			t.Fatalf("repeat after completion: outcome %d, response %+v; want Replay of %+v", o, got, resp)
		}
		// After the TTL the key is new again; purge removes expired keys.
		if o, _ := claim(t, db, attempt("k1", "fp", "tok-f", t0.Add(25*time.Hour))); o != idemkey.Run {
			t.Fatalf("claim after expiry: outcome %d, want Run", o)
		}
		n, err := db.PurgeIdempotencyKeys(ctx, t0.Add(24*time.Hour+time.Minute))
		if err != nil || n != 1 { // user 8's key expired; the renewed k1 did not
			t.Fatalf("purge: %d, %v; want 1 key purged", n, err)
		}
	})
}

func TestIdempotencyReleaseAndTakeOver(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t0 := time.Now()
		// A failed attempt that applied nothing is released: a repeat runs.
		a := attempt("rel", "fp", "tok-a", t0)
		claim(t, db, a)
		if ok, err := db.ReleaseIdempotencyKey(ctx, a.Key, "tok-a"); err != nil || !ok {
			t.Fatalf("release: %v, %v; want released", ok, err)
		}
		if o, _ := claim(t, db, attempt("rel", "fp", "tok-b", t0)); o != idemkey.Run {
			t.Fatalf("repeat after release: outcome %d, want Run", o)
		}

		// An attempt abandoned before its write (a node died) is taken
		// over once its lock has run out, and can then no longer write.
		dead := attempt("take", "fp", "tok-dead", t0)
		claim(t, db, dead)
		if o, _ := claim(t, db, attempt("take", "fp", "tok-new", t0.Add(10*time.Second))); o != idemkey.InFlight {
			t.Fatalf("repeat within the lock: outcome %d, want InFlight", o)
		}
		if o, _ := claim(t, db, attempt("take", "fp", "tok-new", t0.Add(31*time.Second))); o != idemkey.Run {
			t.Fatalf("repeat after the lock: outcome %d, want Run (take over)", o)
		}
		deadCtx := idemkey.WithClaim(ctx, idemkey.Claim{Key: dead.Key, Token: "tok-dead"})
		u := newUser("ghost")
		if err := db.CreateUser(deadCtx, &u); !errors.Is(err, idemkey.ErrClaimLost) {
			t.Fatalf("write by the abandoned attempt: %v, want ErrClaimLost", err)
		}
		if _, err := db.UserByUsername(ctx, "ghost"); err == nil {
			t.Fatal("the abandoned attempt's write was committed")
		}
		newCtx := idemkey.WithClaim(ctx, idemkey.Claim{Key: dead.Key, Token: "tok-new"})
		u = newUser("alive")
		if err := db.CreateUser(newCtx, &u); err != nil {
			t.Fatalf("write by the owner: %v", err)
		}
		// The write marked the key applied in its transaction: a failure
		// after it cannot release the key, and if this attempt dies too,
		// a repeat is told the write happened rather than redoing it.
		if ok, err := db.ReleaseIdempotencyKey(ctx, dead.Key, "tok-new"); err != nil || ok {
			t.Fatalf("release after a write: %v, %v; want not released", ok, err)
		}
		if o, _ := claim(t, db, attempt("take", "fp", "tok-3", t0.Add(2*time.Minute))); o != idemkey.Lost {
			t.Fatalf("repeat of an applied, abandoned attempt: outcome %d, want Lost", o)
		}
	})
}

// Many nodes racing with the same key: exactly one runs.
func TestIdempotencyClaimRace(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t0 := time.Now()
		var wg sync.WaitGroup
		outcomes := make(chan idemkey.Outcome, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o, _, err := db.ClaimIdempotencyKey(ctx, attempt("race", "fp", "tok-"+string(rune('a'+i)), t0))
				if err != nil {
					t.Error(err)
					return
				}
				outcomes <- o
			}()
		}
		wg.Wait()
		close(outcomes)
		runs := 0
		for o := range outcomes {
			switch o {
			case idemkey.Run:
				runs++
			case idemkey.InFlight:
			default:
				t.Errorf("outcome %d, want Run or InFlight", o)
			}
		}
		if runs != 1 {
			t.Fatalf("%d attempts got to run, want exactly 1", runs)
		}
	})
}

func newUser(name string) conduit.User {
	ts := now()
	return conduit.User{Username: name, Email: name + "@example.com", PasswordHash: "h", CreatedAt: ts, UpdatedAt: ts}
}
