package conduit

import "context"

type freshKey struct{}

// Fresh marks ctx for reads whose results must include every write
// acknowledged so far, on any node: reads whose results are kept and
// reused (cache fills, shared list pages) and credential checks. A Store
// that serves reads from copies that may lag behind (read replicas) must
// answer these from a copy proven to hold every such write, or from the
// primary. Other reads may lag, within the store's limits, except behind
// the reader's own writes.
func Fresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshKey{}, true)
}

// IsFresh reports whether ctx was marked by Fresh.
func IsFresh(ctx context.Context) bool {
	fresh, _ := ctx.Value(freshKey{}).(bool)
	return fresh
}
