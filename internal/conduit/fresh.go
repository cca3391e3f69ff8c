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

type latestKey struct{}

// Latest marks ctx for reads that must see every committed write, even one
// committed an instant ago and not yet acknowledged to anyone: the reads
// of a background job, which may run the moment the write that enqueued it
// commits. A Store with read replicas answers them from the primary.
func Latest(ctx context.Context) context.Context {
	return context.WithValue(ctx, latestKey{}, true)
}

// IsLatest reports whether ctx was marked by Latest.
func IsLatest(ctx context.Context) bool {
	latest, _ := ctx.Value(latestKey{}).(bool)
	return latest
}
