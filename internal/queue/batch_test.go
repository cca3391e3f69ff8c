package queue_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/queue"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// counted is the store's outbox with its calls counted (each is one
// transaction) and, if failing is set, its deletes of done jobs failing as
// a database that went away would.
type counted struct {
	*store.DB
	mu        sync.Mutex
	claims    int
	completes int
	deleted   []int // how many done jobs each claim or CompleteJobs carried
	failing   bool
}

var errDown = errors.New("database down")

func (c *counted) ClaimJobs(ctx context.Context, limit int, lease time.Duration, done ...int64) ([]conduit.Job, error) {
	c.mu.Lock()
	c.claims++
	failing := c.failing && len(done) > 0
	if len(done) > 0 && !failing {
		c.deleted = append(c.deleted, len(done))
	}
	c.mu.Unlock()
	if failing {
		return nil, errDown
	}
	return c.DB.ClaimJobs(ctx, limit, lease, done...)
}

func (c *counted) CompleteJobs(ctx context.Context, ids ...int64) error {
	c.mu.Lock()
	c.completes++
	failing := c.failing
	if !failing {
		c.deleted = append(c.deleted, len(ids))
	}
	c.mu.Unlock()
	if failing {
		return errDown
	}
	return c.DB.CompleteJobs(ctx, ids...)
}

// handlerFunc runs jobs with a function.
type handlerFunc func(ctx context.Context, j conduit.Job) error

func (f handlerFunc) Handle(ctx context.Context, j conduit.Job) error { return f(ctx, j) }

// enqueue writes n timeline builds (the handlers below do not build them).
func enqueue(t *testing.T, db *store.DB, n int) {
	t.Helper()
	var jobs []conduit.Job
	for i := range n {
		jobs = append(jobs, conduit.TimelineBuildJob(int64(i+1)))
	}
	if err := db.Enqueue(ctx, jobs...); err != nil {
		t.Fatal(err)
	}
}

func pendingJobs(t *testing.T, db *store.DB) []conduit.PendingJob {
	t.Helper()
	ps, err := db.PendingJobs(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// A worker's bookkeeping for 25 done jobs in batches of 10 is three claims
// (the second and third deleting the batch before) and one CompleteJobs
// for the last five, not a commit per job; every job ran once and the
// outbox is empty. A job that failed among them is retried, the others
// completed.
func TestBatchedCompletion(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil)
		enqueue(t, db, 25)
		out := &counted{DB: db}
		var mu sync.Mutex
		runs := map[int64]int{}
		var failed int64
		h := handlerFunc(func(_ context.Context, j conduit.Job) error {
			mu.Lock()
			defer mu.Unlock()
			runs[j.ID]++
			if len(runs) == 13 && failed == 0 { // one in the second batch, once
				failed = j.ID
				return errors.New("injected failure")
			}
			return nil
		})
		opts := queue.Options{Batch: 10, Lease: time.Minute, RetryFirst: time.Hour, RetryMax: time.Hour}
		n, err := queue.NewLocal(out, h, opts).RunDue(ctx)
		if err != nil || n != 25 {
			t.Fatalf("RunDue = %d, %v; want 25 claimed", n, err)
		}
		if len(runs) != 25 {
			t.Fatalf("%d jobs ran, want 25", len(runs))
		}
		for id, k := range runs {
			if k != 1 {
				t.Errorf("job %d ran %d times", id, k)
			}
		}
		if out.claims != 3 || out.completes != 1 || !slices.Equal(out.deleted, []int{10, 9, 5}) {
			t.Errorf("claims %d, CompleteJobs %d, done jobs deleted per call %v; want 3, 1, [10 9 5]",
				out.claims, out.completes, out.deleted)
		}
		left := pendingJobs(t, db)
		if len(left) != 1 || left[0].ID != failed || left[0].LastError != "injected failure" || !left[0].RunAt.After(time.Now().Add(30*time.Minute)) {
			t.Fatalf("outbox = %+v; want only job %d, to be retried in 45-60 minutes", left, failed)
		}
	})
}

// Jobs whose effect is committed but whose deletion failed (the database
// went away, or the worker's context ended before the batch's delete) are
// delivered again once their lease is over, not lost, and not before.
func TestBatchedCompletionLostIsRedelivered(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil)
		const lease = 400 * time.Millisecond
		opts := queue.Options{Batch: 4, Lease: lease}
		var mu sync.Mutex
		runs := map[int64]int{}
		count := handlerFunc(func(_ context.Context, j conduit.Job) error {
			mu.Lock()
			defer mu.Unlock()
			runs[j.ID]++
			return nil
		})

		// The deletes fail: the claims that carry them and CompleteJobs.
		enqueue(t, db, 6)
		out := &counted{DB: db, failing: true}
		n, err := queue.NewLocal(out, count, opts).RunDue(ctx)
		if !errors.Is(err, errDown) || n != 4 {
			t.Fatalf("RunDue = %d, %v; want the first batch, then the claim failing", n, err)
		}
		if out.completes != 1 {
			t.Errorf("after the failed claim, CompleteJobs was tried %d times, want once", out.completes)
		}
		if left := pendingJobs(t, db); len(left) != 6 {
			t.Fatalf("%d jobs in the outbox, want all 6 (4 leased)", len(left))
		}

		// The context ends in the last job: the batch's delete fails.
		runCtx, cancel := context.WithCancel(ctx)
		cancelling := handlerFunc(func(ctx context.Context, j conduit.Job) error {
			count(ctx, j)
			mu.Lock()
			defer mu.Unlock()
			if len(runs) == 6 {
				cancel()
			}
			return nil
		})
		if n, err := queue.NewLocal(db, cancelling, opts).RunDue(runCtx); n != 2 || err != nil {
			t.Fatalf("RunDue = %d, %v; want the two jobs not leased", n, err)
		}
		if left := pendingJobs(t, db); len(left) != 6 {
			t.Fatalf("%d jobs in the outbox, want all 6 (leased)", len(left))
		}
		if n, _ := queue.NewLocal(db, count, opts).RunDue(ctx); n != 0 {
			t.Fatalf("%d jobs delivered again before their lease ended", n)
		}

		time.Sleep(lease + 100*time.Millisecond)
		if err := queue.Drain(ctx, db, count, opts); err != nil {
			t.Fatal(err)
		}
		if left := pendingJobs(t, db); len(left) != 0 {
			t.Fatalf("%d jobs left after the leases", len(left))
		}
		for id, k := range runs {
			if k != 2 {
				t.Errorf("job %d ran %d times, want 2 (once more after the lease)", id, k)
			}
		}
	})
}

// A batch that runs for half its lease deletes what it has done before
// going on, so that a slow batch does not have its done jobs delivered
// again.
func TestBatchedCompletionWithinHalfTheLease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil)
		enqueue(t, db, 4)
		const lease = 600 * time.Millisecond
		var seen []int // outbox size when each job starts
		h := handlerFunc(func(_ context.Context, j conduit.Job) error {
			seen = append(seen, len(pendingJobs(t, db)))
			time.Sleep(lease / 5)
			return nil
		})
		out := &counted{DB: db}
		if n, err := queue.NewLocal(out, h, queue.Options{Batch: 4, Lease: lease}).RunDue(ctx); n != 4 || err != nil {
			t.Fatalf("RunDue = %d, %v", n, err)
		}
		// Jobs 1-3 take 3/5 of the lease: they are deleted before job 4,
		// which the next claim deletes (the batch was full).
		if !slices.Equal(seen, []int{4, 4, 4, 1}) || out.completes != 1 || !slices.Equal(out.deleted, []int{3, 1}) {
			t.Fatalf("outbox sizes as the jobs started %v, CompleteJobs %d, deleted per call %v; want [4 4 4 1], 1, [3 1]",
				seen, out.completes, out.deleted)
		}
		if left := pendingJobs(t, db); len(left) != 0 {
			t.Fatalf("%d jobs left", len(left))
		}
	})
}
