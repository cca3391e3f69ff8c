package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// pendingKinds lists the kinds of the jobs in the outbox, oldest first.
func pendingKinds(t *testing.T, db *store.DB) []string {
	t.Helper()
	jobs, err := db.PendingJobs(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, j := range jobs {
		kinds = append(kinds, j.Kind)
	}
	return kinds
}

// A job exists if and only if its write committed: every write enqueues
// its jobs, a repeated no-op write none, and a write that fails after
// enqueuing (a duplicate tag, refused by the tags' primary key once the
// article row and its job are written) leaves neither the row nor the job.
func TestOutboxIsAtomicWithTheWrite(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil) // keep the jobs in the outbox
		alice, bob := mkUser(t, db, "alice"), mkUser(t, db, "bob")
		if got := pendingKinds(t, db); len(got) != 0 {
			t.Fatalf("after sign-ups: %v, want no jobs", got)
		}

		a := mkArticle(t, db, alice, "first")
		if err := db.Follow(ctx, bob.ID, alice.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.Follow(ctx, bob.ID, alice.ID); err != nil { // repeated: a no-op
			t.Fatal(err)
		}
		if _, err := db.Favorite(ctx, bob.ID, a.ID, a.Author.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Favorite(ctx, bob.ID, a.ID, a.Author.ID); err != nil { // repeated
			t.Fatal(err)
		}
		c := conduit.Comment{ArticleID: a.ID, Body: "hi", CreatedAt: now(), UpdatedAt: now(), Author: conduit.Profile{ID: bob.ID}}
		if err := db.CreateComment(ctx, &c, roomy); err != nil {
			t.Fatal(err)
		}
		if err := db.Unfollow(ctx, bob.ID, alice.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.Unfollow(ctx, bob.ID, alice.ID); err != nil { // repeated
			t.Fatal(err)
		}
		if err := db.DeleteArticle(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		want := []string{conduit.JobFeedPublish, conduit.JobFeedFollow, conduit.JobNotifyFollow, conduit.JobNotifyFavorite,
			conduit.JobNotifyComment, conduit.JobFeedFollow, conduit.JobFeedDelete}
		if got := pendingKinds(t, db); !slices.Equal(got, want) {
			t.Fatalf("jobs = %v, want %v", got, want)
		}

		// Rolled back after the job was written: no article, no job.
		bad := conduit.Article{Slug: "dup-tags", Title: "t", Description: "d", Body: "b", Tags: []string{"x", "x"},
			CreatedAt: now(), UpdatedAt: now(), Author: conduit.Profile{ID: alice.ID}}
		if err := db.CreateArticle(ctx, &bad); err == nil {
			t.Fatal("an article with a repeated tag was stored")
		}
		if _, err := db.ArticleBySlug(ctx, 0, "dup-tags"); !errors.Is(err, conduit.ErrNotFound) {
			t.Fatalf("rolled-back article: err = %v, want not found", err)
		}
		// A follow of nobody fails on its foreign key: no job either.
		if err := db.Follow(ctx, bob.ID, 999999); err == nil {
			t.Fatal("following a missing user succeeded")
		}
		if got := pendingKinds(t, db); !slices.Equal(got, want) {
			t.Fatalf("after failed writes: jobs = %v, want %v", got, want)
		}
	})
}

// Claiming leases jobs (a claimed job is not claimed again until its lease
// ends: a worker that died mid-job has it delivered again), retries push a
// job back, burying moves it to the dead letters, and dead letters can be
// retried (as new jobs) or dropped.
func TestJobLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil)
		alice := mkUser(t, db, "alice")
		for _, s := range []string{"a1", "a2", "a3"} {
			mkArticle(t, db, alice, s)
		}
		first, err := db.ClaimJobs(ctx, 2, 300*time.Millisecond)
		if err != nil || len(first) != 2 || first[0].Attempts != 1 || first[0].Kind != conduit.JobFeedPublish {
			t.Fatalf("claim = %+v, %v; want two first attempts", first, err)
		}
		second, err := db.ClaimJobs(ctx, 10, time.Minute)
		if err != nil || len(second) != 1 || second[0].ID == first[0].ID || second[0].ID == first[1].ID {
			t.Fatalf("second claim = %+v, %v; want only the unclaimed job", second, err)
		}
		// The first lease runs out: its jobs come again, as second attempts.
		time.Sleep(400 * time.Millisecond)
		again, err := db.ClaimJobs(ctx, 10, time.Minute)
		if err != nil || len(again) != 2 || again[0].ID != first[0].ID || again[0].Attempts != 2 {
			t.Fatalf("after the lease: %+v, %v; want the first two again", again, err)
		}
		if err := db.CompleteJobs(ctx, again[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := db.RetryJob(ctx, again[1].ID, time.Now().Add(-time.Millisecond), "boom"); err != nil {
			t.Fatal(err)
		}
		retried, err := db.ClaimJobs(ctx, 10, time.Minute)
		if err != nil || len(retried) != 1 || retried[0].ID != again[1].ID || retried[0].Attempts != 3 {
			t.Fatalf("retried = %+v, %v", retried, err)
		}
		if err := db.BuryJob(ctx, retried[0], "gave up"); err != nil {
			t.Fatal(err)
		}
		stats, err := db.JobStats(ctx)
		if err != nil || len(stats) != 1 || stats[0].Pending != 1 || stats[0].Dead != 1 || stats[0].Oldest.IsZero() {
			t.Fatalf("stats = %+v, %v; want one pending (the leased one) and one dead", stats, err)
		}
		dead, err := db.DeadJobs(ctx, 10)
		if err != nil || len(dead) != 1 || dead[0].LastError != "gave up" || dead[0].Attempts != 3 {
			t.Fatalf("dead = %+v, %v", dead, err)
		}
		if n, err := db.RetryDeadJobs(ctx, dead[0].ID); err != nil || n != 1 {
			t.Fatalf("retry dead: %d, %v", n, err)
		}
		if d, _ := db.DeadJobs(ctx, 10); len(d) != 0 {
			t.Fatalf("dead after retry: %+v", d)
		}
		back, err := db.ClaimJobs(ctx, 10, time.Minute)
		if err != nil || len(back) != 1 || back[0].Key != dead[0].Key || back[0].Attempts != 1 {
			t.Fatalf("retried dead letter = %+v, %v; want it as a new job", back, err)
		}
		if err := db.BuryJob(ctx, back[0], "again"); err != nil {
			t.Fatal(err)
		}
		if n, err := db.DropDeadJobs(ctx, 0); err != nil || n != 1 {
			t.Fatalf("drop: %d, %v", n, err)
		}
	})
}

// Done jobs are deleted together: by CompleteJobs in one statement, or by
// the next claim in its transaction; a claim that fails deletes nothing.
func TestCompleteJobsTogether(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil)
		var jobs []conduit.Job
		for i := range 9 {
			jobs = append(jobs, conduit.TimelineBuildJob(int64(i+1)))
		}
		if err := db.Enqueue(ctx, jobs...); err != nil {
			t.Fatal(err)
		}
		ids := func(js []conduit.Job) []int64 {
			var out []int64
			for _, j := range js {
				out = append(out, j.ID)
			}
			return out
		}
		pending := func() []int64 {
			t.Helper()
			ps, err := db.PendingJobs(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, p := range ps {
				out = append(out, p.ID)
			}
			return out
		}
		first, err := db.ClaimJobs(ctx, 3, time.Minute)
		if err != nil || len(first) != 3 {
			t.Fatalf("claim = %+v, %v", first, err)
		}
		// The next claim fails (its request is gone): the first three stay.
		gone, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := db.ClaimJobs(gone, 3, time.Minute, ids(first)...); err == nil {
			t.Fatal("a claim with a cancelled context succeeded")
		}
		if got := pending(); len(got) != 9 {
			t.Fatalf("after a failed claim: %d jobs pending, want all 9", len(got))
		}
		second, err := db.ClaimJobs(ctx, 3, time.Minute, ids(first)...)
		if err != nil || len(second) != 3 || slices.Contains(ids(first), second[0].ID) {
			t.Fatalf("second claim = %+v, %v; want three others", second, err)
		}
		if got := pending(); len(got) != 6 || slices.ContainsFunc(ids(first), func(id int64) bool { return slices.Contains(got, id) }) {
			t.Fatalf("after the second claim: pending %v, want the first three deleted", got)
		}
		// In any order, with an id already gone: no error, all deleted.
		done := append(slices.Clone(ids(second)), first[0].ID)
		slices.Reverse(done)
		if err := db.CompleteJobs(ctx, done...); err != nil {
			t.Fatal(err)
		}
		if got := pending(); len(got) != 3 || slices.ContainsFunc(ids(second), func(id int64) bool { return slices.Contains(got, id) }) {
			t.Fatalf("after CompleteJobs: pending %v, want the last three only", got)
		}
		if err := db.CompleteJobs(ctx); err != nil {
			t.Fatalf("completing nothing: %v", err)
		}
	})
}
