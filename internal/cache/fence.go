package cache

import (
	"context"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// The fence makes a read on any node after an acknowledged write see it.
//
// When node A writes, Redis queues the invalidation for every connection
// tracking the key before it answers A. Node B's rueidis reader takes the
// push off B's socket and drops the near copy, but nothing bounds when:
// under CPU load B's reader may not have run yet when B handles a request
// sent after A's answer. Redis answers the commands of one connection in
// order and writes a push to a connection's output before any later reply,
// and rueidis's reader applies pushes before it hands over later replies.
// So a round trip on B's connection that was sent after A's write was
// processed proves that B applied its invalidation.
//
// Every node therefore serves a near-cache hit at time t only after a
// round trip (any call, or a PING of its own) sent at or after t - Fence
// was answered, and a writer answers only Fence after the reply to its
// invalidation arrived. Then, for a read that began after the write was
// acknowledged (at ack, no earlier than Fence after the writer got the
// reply, which came after Redis processed the write), that round trip was
// sent after Redis processed the write:
//
//	sent >= t - Fence > ack - Fence >= reply > processed
//
// No clocks are compared across nodes; only durations (Fence) measured on
// each node are, which bounded drift makes safe. Idle nodes pay one round
// trip on their first read; busy ones keep the fence fresh in the
// background (refreshFence) and serve near hits at once.

// fenceRun is one PING; readers who need a round trip sent after some
// moment share the latest one (group commit) when it was sent late enough.
type fenceRun struct {
	sent time.Time
	done chan struct{}
	err  error
}

type fencer struct {
	mu  sync.Mutex
	run *fenceRun // the latest PING in flight, or nil
}

// fence returns nil once this node has applied every invalidation of a
// write acknowledged before the call (so a near-cache hit read afterwards
// is fresh), or an error if Redis did not answer in time.
func (r *Redis) fence(ctx context.Context, c rueidis.Client) error {
	now := r.now()
	since := now.Add(-r.o.Fence)
	if r.health.answeredSince(since) {
		// Keep it fresh for the next readers while reads flow.
		if !r.health.answeredSince(now.Add(-r.o.Fence / 2)) {
			r.startFence(c, now.Add(-r.o.Fence/2))
		}
		return nil
	}
	r.m.fenceWaits.Inc()
	run := r.startFence(c, since)
	select {
	case <-run.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return run.err
}

// startFence returns a PING sent at or after since: the latest one if it
// was, else a new one. Readers share it; PINGs do not wait for each other
// (rueidis pipelines them), so a reader waits one round trip at most.
func (r *Redis) startFence(c rueidis.Client, since time.Time) *fenceRun {
	r.fences.mu.Lock()
	defer r.fences.mu.Unlock()
	if run := r.fences.run; run != nil && !run.sent.Before(since) {
		return run
	}
	run := &fenceRun{sent: r.now(), done: make(chan struct{})}
	r.fences.run = run
	go func() {
		// r.call records its own send time, later than run.sent.
		run.err = r.call(context.Background(), "fence", r.o.Timeout, func(ctx context.Context) error {
			return c.Do(ctx, c.B().Ping().Build()).Error()
		})
		r.fences.mu.Lock()
		if r.fences.run == run {
			r.fences.run = nil
		}
		r.fences.mu.Unlock()
		close(run.done)
	}()
	return run
}

// Sync returns true once every invalidation of a write acknowledged (on
// any node) before the call has reached this node: state kept outside the
// cache and cleared by WatchPrefix callbacks (the list caches) is then as fresh
// as the cache. False: the cache is not usable or Redis did not answer;
// such state must not be used.
//
// It is false too while a watched key is being tracked again (see
// startRearm): checked before the fence, and after it for the pushes the
// fence's round trip brought.
func (r *Redis) Sync(ctx context.Context) bool {
	b := r.client.Load()
	if b == nil || !r.health.usable() || r.arming.Load() > 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	return r.fence(ctx, b.c) == nil && r.arming.Load() == 0
}

// waitFence is the writer's half: it returns Fence after answered, the
// moment the reply to an invalidation arrived.
func (r *Redis) waitFence(answered time.Time) {
	if d := answered.Add(r.o.Fence).Sub(r.now()); d > 0 {
		time.Sleep(d)
	}
}
