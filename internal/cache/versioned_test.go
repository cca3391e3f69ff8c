package cache_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/cache/redistest"
)

// A value stored with a version never outlives it: a version lives twice
// the ttl of the value that gave it a token, and one with less than a
// value's ttl left is given twice that ttl again when that value is
// stored, keeping its token. So a page kept for a day with a version an
// earlier page made for a moment is served for as long as no write
// replaces the version, and a write's delete still makes it a miss at
// once. (Before, the version lived the ttl of the keep that made it:
// here 200 ms, after which the long value missed.)
func TestVersionsOutliveTheirValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := redistest.Start(t)
	c := rs.Cache(t, cache.RedisOptions{})
	yes := func() bool { return true }
	pttl := func(key string) time.Duration {
		t.Helper()
		v, err := rs.Do("PTTL", "conduit:c:"+key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(v, ":"), 10, 64)
		if err != nil {
			t.Fatalf("PTTL %s: %q", key, v)
		}
		return time.Duration(n) * time.Millisecond
	}

	c.SetCurrent(ctx, "short", []byte("s"), []string{"ver"}, 200*time.Millisecond, yes)
	if left := pttl("ver"); left <= 200*time.Millisecond || left > 400*time.Millisecond {
		t.Fatalf("a new version lives %v, want twice the value's 200ms", left)
	}
	c.SetCurrent(ctx, "long", []byte("l"), []string{"ver"}, time.Hour, yes)
	if left := pttl("ver"); left <= time.Hour {
		t.Fatalf("after an hour-long value was stored with it, the version has %v left", left)
	}
	time.Sleep(500 * time.Millisecond) // past the first version's own life
	if v, ok := c.GetCurrent(ctx, "short"); ok {
		t.Errorf("the 200 ms value is still served after 500 ms: %q", v)
	}
	if v, ok := c.GetCurrent(ctx, "long"); !ok || string(v) != "l" {
		t.Fatalf("the hour-long value after 500 ms: %q, %v; want it served (its version extended, same token)", v, ok)
	}
	// A version with more than the ttl left is not touched.
	before := pttl("ver")
	c.SetCurrent(ctx, "other", []byte("o"), []string{"ver"}, time.Minute, yes)
	if left := pttl("ver"); left > before {
		t.Errorf("a minute-long value extended a version with %v left to %v", before, left)
	}
	// Expiry is not what keeps values fresh: a write's delete is.
	c.Delete(ctx, "ver")
	if v, ok := c.GetCurrent(ctx, "long"); ok {
		t.Fatalf("served %q after its version was deleted", v)
	}
}
