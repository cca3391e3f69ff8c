package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
)

// Positions: max-merged per user and overall, unknown until a floor is
// taken, lost with a Redis restarted empty, and unknown while Redis is
// down; the end-to-end drill is TestReplicaReadYourWritesRedis
// (internal/store).
func TestPositions(t *testing.T) {
	rs := redistest.Start(t)
	a := cache.NewPositions(rs.Cache(t, cache.RedisOptions{}), time.Minute)
	b := cache.NewPositions(rs.Cache(t, cache.RedisOptions{}), time.Minute)
	ctx := context.Background()
	need := func(p *cache.Positions, user int64, fresh bool) (uint64, bool) {
		t.Helper()
		return p.Need(ctx, user, fresh)
	}
	primaryAt := func(lsn uint64) func(context.Context) (uint64, error) {
		return func(context.Context) (uint64, error) { return lsn, nil }
	}

	if _, ok := need(b, 1, false); ok {
		t.Fatal("positions known before any floor was taken")
	}
	if err := a.Floor(ctx, primaryAt(10)); err != nil {
		t.Fatal(err)
	}
	if n, ok := need(b, 1, false); !ok || n != 10 {
		t.Fatalf("after the floor: need %d %v, want 10 true", n, ok)
	}
	// A second floor while positions are trusted changes nothing.
	if err := b.Floor(ctx, func(context.Context) (uint64, error) {
		return 0, errors.New("the primary must not be asked")
	}); err != nil {
		t.Fatal(err)
	}

	for _, w := range []struct {
		lsn  uint64
		user int64
	}{{100, 1}, {50, 1}, {70, 2}} {
		if err := a.Record(ctx, w.lsn, []int64{w.user}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		user  int64
		fresh bool
		want  uint64
	}{{1, false, 100}, {2, false, 70}, {3, false, 10}, {3, true, 100}} {
		if n, ok := need(b, c.user, c.fresh); !ok || n != c.want {
			t.Fatalf("user %d fresh %v on the other node: need %d %v, want %d", c.user, c.fresh, n, ok, c.want)
		}
	}

	// Redis restarted empty: unknown until a floor is taken again.
	rs.Kill()
	// A read within the fence window (1 ms) of the last answered round trip
	// may still trust the near cache, as a read that raced the kill would
	// (fence.go); one that begins later must see that Redis is gone.
	time.Sleep(10 * time.Millisecond)
	if _, ok := need(b, 1, false); ok {
		t.Fatal("positions known while Redis is down")
	}
	rs.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := b.Floor(ctx, primaryAt(120))
		if n, ok := need(b, 1, false); ok {
			if n != 120 {
				t.Fatalf("after the restart and a floor: need %d, want 120", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no floor after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, ok := need(a, 2, true); !ok || n != 120 {
		t.Fatalf("fresh after the floor on the first node: %d %v, want 120", n, ok)
	}

	// A new generation started while a floor was being taken (a position
	// that never reached Redis may be newer than the floor read): that
	// floor is not used, the next one is.
	if _, err := rs.Do("INCR", "conduit:gen"); err != nil {
		t.Fatal(err)
	}
	err := a.Floor(ctx, func(context.Context) (uint64, error) {
		if _, err := rs.Do("INCR", "conduit:gen"); err != nil {
			t.Error(err)
		}
		return 130, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := need(b, 1, false); ok {
		t.Fatalf("a floor read across a new generation is trusted: need %d", n)
	}
	if err := a.Floor(ctx, primaryAt(140)); err != nil {
		t.Fatal(err)
	}
	if n, ok := need(b, 1, false); !ok || n != 140 {
		t.Fatalf("after the next floor: need %d %v, want 140 true", n, ok)
	}
}
