package cache_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/cache"
)

// manyLoader is the batched GetOrLoad every cache here has.
type manyLoader interface {
	GetOrLoadMany(ctx context.Context, keys []string, ttl time.Duration, load func(missing []string) (map[string][]byte, error)) (map[string][]byte, error)
}

// recordingLoad returns a load that answers from vals (keys not in it are
// not found), records each call's missing keys, and runs during inside
// the load, after the keys were read.
func recordingLoad(calls *[][]string, vals map[string]string, during func()) func([]string) (map[string][]byte, error) {
	return func(missing []string) (map[string][]byte, error) {
		*calls = append(*calls, slices.Sorted(slices.Values(missing)))
		out := map[string][]byte{}
		for _, k := range missing {
			if v, ok := vals[k]; ok {
				out[k] = []byte(v)
			}
		}
		if during != nil {
			during()
		}
		return out, nil
	}
}

func strs(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// GetOrLoadMany serves the keys present and loads the others in one call;
// a key deleted (on any node) while that call ran is not stored, the
// others are, and the next read of it loads again and gets what the
// write left.
func TestContractGetOrLoadMany(t *testing.T) {
	eachCache(t, 2, func(t *testing.T, cs []contractCache) {
		a, b := cs[0], cs[1]
		ml := a.(manyLoader)
		a.Set(bg, "hit", []byte("h"), time.Minute)
		var calls [][]string
		vals := map[string]string{"k1": "v1", "k2": "v2-old"}
		got, err := ml.GetOrLoadMany(bg, []string{"hit", "k1", "k2", "gone", "k1"}, time.Minute,
			recordingLoad(&calls, vals, func() {
				b.Delete(bg, "k2") // a write, acknowledged before the load returns
				vals["k2"] = "v2-new"
			}))
		want := map[string]string{"hit": "h", "k1": "v1", "k2": "v2-old"}
		if err != nil || !maps.Equal(strs(got), want) {
			t.Fatalf("GetOrLoadMany = %v, %v; want %v", strs(got), err, want)
		}
		if !slices.EqualFunc(calls, [][]string{{"gone", "k1", "k2"}}, slices.Equal) {
			t.Fatalf("loads %v, want one of the three keys missed", calls)
		}

		calls = nil
		got, err = ml.GetOrLoadMany(bg, []string{"k1", "k2"}, time.Minute, recordingLoad(&calls, vals, nil))
		want = map[string]string{"k1": "v1", "k2": "v2-new"}
		if err != nil || !maps.Equal(strs(got), want) {
			t.Fatalf("after the Delete: GetOrLoadMany = %v, %v; want %v", strs(got), err, want)
		}
		if !slices.EqualFunc(calls, [][]string{{"k2"}}, slices.Equal) {
			t.Fatalf("after the Delete: loads %v, want one of k2 (k1 stored, k2 not)", calls)
		}

		// A load that began after the Delete is stored at once (as
		// GetOrLoad's), and a failed one stores nothing.
		calls = nil
		if got, err := ml.GetOrLoadMany(bg, []string{"k2"}, time.Minute, recordingLoad(&calls, vals, nil)); err != nil || string(got["k2"]) != "v2-new" || len(calls) != 0 {
			t.Fatalf("third read: %v, %v after loads %v; want v2-new from the cache", strs(got), err, calls)
		}
		down := errors.New("down")
		if _, err := ml.GetOrLoadMany(bg, []string{"e"}, time.Minute, func([]string) (map[string][]byte, error) {
			return map[string][]byte{"e": []byte("x")}, down
		}); !errors.Is(err, down) {
			t.Fatalf("a failed load returned %v", err)
		}
		if v := get(a, "e"); v != "<miss>" {
			t.Fatalf("a failed load stored %s", v)
		}
	})
}

// A key whose fill lease another node holds is loaded with the others and
// not stored: that node's fill stores it.
func TestRedisGetOrLoadManyLeaseHeldElsewhere(t *testing.T) {
	rs, srv := newRedisNodes(t, 1, cache.RedisOptions{})
	r := rs[0]
	if _, err := srv.Do("SET", "conduit:l:busy", "0:someone-else", "PX", "60000"); err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	got, err := r.GetOrLoadMany(bg, []string{"busy", "free"}, time.Minute,
		recordingLoad(&calls, map[string]string{"busy": "b", "free": "f"}, nil))
	if err != nil || !maps.Equal(strs(got), map[string]string{"busy": "b", "free": "f"}) {
		t.Fatalf("GetOrLoadMany = %v, %v", strs(got), err)
	}
	if !slices.EqualFunc(calls, [][]string{{"busy", "free"}}, slices.Equal) {
		t.Fatalf("loads %v, want one of both keys", calls)
	}
	if get(r, "busy") != "<miss>" || get(r, "free") != "f" {
		t.Fatalf("stored busy=%s free=%s; want only free", get(r, "busy"), get(r, "free"))
	}
	if v, _ := srv.Do("GET", "conduit:l:busy"); v != "0:someone-else" {
		t.Fatalf("the other node's lease became %q", v)
	}
}

// Without a live invalidation channel Coherent loads every key and
// stores none.
func TestCoherentGetOrLoadManySilent(t *testing.T) {
	c := cache.NewCoherent(cache.NewMemory(100), cache.CoherentOptions{Publish: func(context.Context, string) error { return nil }, MaxPayload: 7999})
	var calls [][]string
	for range 2 {
		if _, err := c.GetOrLoadMany(bg, []string{"x"}, time.Minute, recordingLoad(&calls, map[string]string{"x": "1"}, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("loads %v: a GetOrLoadMany while not connected stored its value", calls)
	}
}
