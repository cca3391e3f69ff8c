package idempotency_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/idemkey"
	"github.com/conduit-dev/conduit/internal/idempotency"
)

// claimCounter is a Store that lets the first attempt of a key run and
// reports the others in flight, counting the claims that reach it.
type claimCounter struct {
	mu     sync.Mutex
	claims int
	owned  map[string]bool
}

func (s *claimCounter) ClaimIdempotencyKey(_ context.Context, a idemkey.Attempt) (idemkey.Outcome, idemkey.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims++
	if s.owned[a.Key.Key] {
		return idemkey.InFlight, idemkey.Response{}, nil
	}
	if s.owned == nil {
		s.owned = map[string]bool{}
	}
	s.owned[a.Key.Key] = true
	return idemkey.Run, idemkey.Response{}, nil
}

func (s *claimCounter) CompleteIdempotencyKey(context.Context, idemkey.Key, string, idemkey.Response) error {
	return nil
}

func (s *claimCounter) ReleaseIdempotencyKey(context.Context, idemkey.Key, string) (bool, error) {
	return false, nil
}

func (s *claimCounter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims
}

// With a Locker (Redis), a repeat of a request still running is turned
// away by the lock without a claim in the database; with Redis down the
// repeat goes to the database's claim, which turns it away too.
func TestLockerTurnsAwayRepeatsBeforeTheDatabase(t *testing.T) {
	rs := redistest.Start(t)
	r := rs.Cache(t, cache.RedisOptions{})
	st := &claimCounter{}
	running, release := make(chan struct{}), make(chan struct{})
	h := idempotency.Middleware(st, idempotency.Options{Locker: r, User: func(*http.Request) int64 { return 7 }})(
		http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/slow" {
				close(running)
				<-release
			}
			w.WriteHeader(http.StatusCreated)
		}))
	do := func(path, key string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", path, strings.NewReader(`{}`))
		req.Header.Set(idempotency.Header, key)
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	first := make(chan int)
	go func() { first <- do("/slow", "k1") }()
	<-running
	if code := do("/slow", "k1"); code != http.StatusConflict {
		t.Fatalf("repeat while the first runs: %d, want 409", code)
	}
	if n := st.count(); n != 1 {
		t.Fatalf("%d claims reached the database, want 1 (the repeat must stop at the lock)", n)
	}
	close(release)
	if code := <-first; code != http.StatusCreated {
		t.Fatalf("first: %d", code)
	}
	// The lock is released once the response is stored.
	if code := do("/fast", "k2"); code != http.StatusCreated {
		t.Fatalf("another key: %d", code)
	}
	before := st.count()
	if code := do("/fast", "k2"); code != http.StatusConflict || st.count() != before+1 {
		t.Fatalf("repeat after the first finished: %d, %d claims (want it to reach the database)", code, st.count()-before)
	}

	rs.Kill()
	before = st.count()
	if code := do("/fast", "k3"); code != http.StatusCreated || st.count() != before+1 {
		t.Fatalf("with Redis down: %d, %d claims, want 201 through the database's claim", code, st.count()-before)
	}
	if code := do("/fast", "k3"); code != http.StatusConflict || st.count() != before+2 {
		t.Fatalf("repeat with Redis down: %d, want the database's claim to turn it away", code)
	}
}
