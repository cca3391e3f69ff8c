package cache_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// memAttempts is a fallback counter in memory that counts its calls.
type memAttempts struct {
	mu    sync.Mutex
	calls int
	w     map[string]conduit.AttemptWindow
}

func (m *memAttempts) Attempts(_ context.Context, keys []string, now time.Time) (map[string]conduit.AttemptWindow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	out := map[string]conduit.AttemptWindow{}
	for _, k := range keys {
		if w, ok := m.w[k]; ok && w.ResetAt.After(now) {
			out[k] = w
		}
	}
	return out, nil
}

func (m *memAttempts) AddAttempts(_ context.Context, keys []string, delta int, window time.Duration, now time.Time) (map[string]conduit.AttemptWindow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.w == nil {
		m.w = map[string]conduit.AttemptWindow{}
	}
	out := map[string]conduit.AttemptWindow{}
	for _, k := range keys {
		w, ok := m.w[k]
		if !ok || !w.ResetAt.After(now) {
			w = conduit.AttemptWindow{ResetAt: now.Add(window)}
		}
		w.Count = max(w.Count+delta, 0)
		m.w[k], out[k] = w, w
	}
	return out, nil
}

func (m *memAttempts) PurgeAttempts(context.Context, time.Time) (int64, error) { return 0, nil }

func (m *memAttempts) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// The counters in Redis follow conduit.AttemptCounter's contract, and the
// fallback is not called while Redis answers.
func TestRedisAttempts(t *testing.T) {
	rs := redistest.Start(t)
	fb := &memAttempts{}
	a := rs.Cache(t, cache.RedisOptions{}).Attempts(fb)
	now := time.Now()
	add := func(delta int, window time.Duration, keys ...string) map[string]conduit.AttemptWindow {
		t.Helper()
		ws, err := a.AddAttempts(bg, keys, delta, window, now)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	ws := add(1, time.Minute, "k2", "k1", "k1")
	if ws["k1"].Count != 1 || ws["k2"].Count != 1 {
		t.Fatalf("first add: %+v (a repeated key counts once)", ws)
	}
	if d := ws["k1"].ResetAt.Sub(now); d < 50*time.Second || d > time.Minute {
		t.Fatalf("window ends in %v, want about a minute", d)
	}
	if ws = add(1, time.Minute, "k1"); ws["k1"].Count != 2 {
		t.Fatalf("second add: %+v", ws)
	}
	got, err := a.Attempts(bg, []string{"k1", "k2", "k3"}, now)
	if err != nil || got["k1"].Count != 2 || got["k2"].Count != 1 || len(got) != 2 {
		t.Fatalf("read: %+v %v (k3 has no window and must be absent)", got, err)
	}
	if ws = add(-1, time.Minute, "k2"); ws["k2"].Count != 0 {
		t.Fatalf("refund: %+v", ws)
	}
	if ws = add(-1, time.Minute, "k2"); ws["k2"].Count != 0 {
		t.Fatalf("refund below zero: %+v", ws)
	}
	// A window ends: the key is gone, and the next add opens a new one.
	add(3, 100*time.Millisecond, "short")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := a.Attempts(bg, []string{"short"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the window did not end: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ws = add(1, time.Minute, "short"); ws["short"].Count != 1 {
		t.Fatalf("new window: %+v", ws)
	}
	if n := fb.callCount(); n != 0 {
		t.Fatalf("the fallback was called %d times while Redis answered", n)
	}

	// Redis gone: the fallback counts, and nothing fails.
	rs.Kill()
	if _, err := a.AddAttempts(bg, []string{"k9"}, 1, time.Minute, now); err != nil {
		t.Fatalf("with Redis down: %v", err)
	}
	if got, err := a.Attempts(bg, []string{"k9"}, now); err != nil || got["k9"].Count != 1 {
		t.Fatalf("with Redis down: %+v %v", got, err)
	}
	if fb.callCount() < 2 {
		t.Fatal("the fallback was not used with Redis down")
	}
}

// Sign-in throttling across two nodes with the counters in Redis: failures
// through A count against attempts through B, and the database's counter
// table stays empty.
func TestRedisThrottleAcrossNodes(t *testing.T) {
	rs := redistest.Start(t)
	url := storetest.NewMigratedPostgresDatabase(t)
	ctx := context.Background()
	limits := conduit.ThrottleLimits{LoginWindow: time.Minute, LoginPerAddr: 3}
	var svcs []*conduit.Service
	for range 2 {
		d, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		c := rs.Cache(t, cache.RedisOptions{})
		svcs = append(svcs, conduit.NewService(d, c, auth.Bcrypt{Cost: 4}, conduit.WithThrottle(c.Attempts(d), limits)))
	}
	if _, err := svcs[0].Register(ctx, conduit.NewUser{Username: "tess", Email: "tess@example.com", Password: "password1"}); err != nil {
		t.Fatal(err)
	}
	wrong := conduit.SignIn{Email: "tess@example.com", Password: "wrong-password", ClientAddr: "192.0.2.7"}
	for i := range 3 {
		if _, err := svcs[i%2].Login(ctx, wrong); !errors.Is(err, conduit.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v, want invalid credentials", i+1, err)
		}
	}
	var te *conduit.ThrottledError
	if _, err := svcs[1].Login(ctx, wrong); !errors.As(err, &te) {
		t.Fatalf("fourth failed sign-in from the address, through the other node: %v, want throttled", err)
	}
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var rows int
	if err := admin.QueryRow(`SELECT count(*) FROM auth_attempts`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("%d rows in auth_attempts: the counters went to the database", rows)
	}
}
