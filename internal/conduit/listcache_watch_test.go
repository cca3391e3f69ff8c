package conduit_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
)

// The ledger follows the cache's deletes of its keys, whoever makes them
// (here the cache itself, as Coherent does for another node's write): a
// bucket key invalidates that bucket only, "lists:changed" and a clear of
// the cache invalidate everything. The keys are what every node sends, so
// they are spelt out here.
func TestListLedgerFollowsCacheDeletes(t *testing.T) {
	ctx := context.Background()
	m := cache.NewMemory(100)
	svc := conduit.NewService(nil, m, auth.Bcrypt{Cost: 4})
	page := conduit.DepsOf("tag-go")
	other := (page[0] + 1) % 16384
	stamp := func() conduit.ListStamp {
		t.Helper()
		s, ok := svc.ListsStamp(ctx)
		if !ok {
			t.Fatal("the ledger is not in use with an in-process cache")
		}
		return s
	}
	bucketKey := func(b uint16) string { return "lists:" + strconv.Itoa(int(b)) }

	s := stamp()
	m.Delete(ctx, bucketKey(other), "unrelated")
	if !svc.ListsFresh(ctx, s, page) {
		t.Fatal("a delete of another bucket's key made the page stale")
	}
	m.Delete(ctx, bucketKey(page[0]))
	if svc.ListsFresh(ctx, s, page) {
		t.Fatal("a delete of the page's bucket key left it fresh")
	}

	for name, invalidate := range map[string]func(){
		"lists:changed": func() { m.Delete(ctx, "lists:changed") },
		"a clear":       m.Clear,
	} {
		s := stamp()
		invalidate()
		if svc.ListsFresh(ctx, s, page) || svc.ListsFresh(ctx, s, conduit.Deps{other}) {
			t.Errorf("after %s: a page is still fresh", name)
		}
	}
}

// BenchmarkNewService is the cost of a service's start, most of which was
// the list ledger's watch of sixteen thousand keys.
func BenchmarkNewService(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		conduit.NewService(nil, cache.NewMemory(1000), auth.Bcrypt{Cost: 4})
	}
}
