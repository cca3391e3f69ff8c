package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/queue"
	"github.com/conduit-dev/conduit/internal/queue/natstest"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

var ctx = context.Background()

// flaky fails the first attempt of every third job, so that every run of
// the tests retries jobs; it counts attempts per job.
type flaky struct {
	h        queue.Handler
	mu       sync.Mutex
	attempts map[int64]int
}

func (f *flaky) Handle(ctx context.Context, j conduit.Job) error {
	f.mu.Lock()
	f.attempts[j.ID]++
	n := f.attempts[j.ID]
	f.mu.Unlock()
	if j.ID%3 == 0 && n == 1 {
		return errors.New("injected failure")
	}
	return f.h.Handle(ctx, j)
}

func (f *flaky) retried() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.attempts {
		if a > 1 {
			n++
		}
	}
	return n
}

var testOpts = queue.Options{Workers: 2, Lease: 2 * time.Second, Poll: 50 * time.Millisecond,
	RetryFirst: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxAttempts: 4}

// world is a few users writing: follows, articles, favorites, comments.
type world struct {
	users    []conduit.User
	articles []conduit.Article
	// favorites[article index] = users (other than the author) who favorited it
	favorites map[int][]int
}

func (w *world) write(t *testing.T, db *store.DB, round int) {
	t.Helper()
	if w.favorites == nil {
		w.favorites = map[int][]int{}
	}
	for i := range 4 {
		u := conduit.User{Username: fmt.Sprintf("r%du%d", round, i), Email: fmt.Sprintf("r%du%d@example.com", round, i),
			PasswordHash: "x", CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := db.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		w.users = append(w.users, u)
	}
	n := len(w.users)
	for i, u := range w.users {
		for _, k := range []int{1, 3} {
			if err := db.Follow(ctx, u.ID, w.users[(i+k+round)%n].ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, u := range w.users[n-4:] {
		a := conduit.Article{Slug: fmt.Sprintf("r%d-a%d", round, i), Title: "t", Description: "d", Body: "b",
			CreatedAt: time.Now(), UpdatedAt: time.Now(), Author: conduit.Profile{ID: u.ID}}
		if err := db.CreateArticle(ctx, &a); err != nil {
			t.Fatal(err)
		}
		w.articles = append(w.articles, a)
	}
	for ai, a := range w.articles {
		for ui, u := range w.users {
			if (ui+ai+round)%4 == 0 && u.ID != a.Author.ID && !slices.Contains(w.favorites[ai], ui) {
				if _, err := db.Favorite(ctx, u.ID, a.ID, a.Author.ID); err != nil {
					t.Fatal(err)
				}
				w.favorites[ai] = append(w.favorites[ai], ui)
			}
		}
	}
}

// check compares every user's timeline with the feed read from the
// follows, and the favorite notifications with the favorites made.
func (w *world) check(t *testing.T, db *store.DB) {
	t.Helper()
	fromTimeline := 0
	for _, u := range w.users {
		f := conduit.ArticleFilter{Limit: 20}
		want, err := db.FeedOnRead(ctx, u.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := db.TimelineFeed(ctx, u.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("%s: the timeline does not answer after the queue drained", u.Username)
			continue
		}
		fromTimeline++
		if got.Count != want.Count || len(got.Articles) != len(want.Articles) {
			t.Errorf("%s: timeline %d articles (count %d), on read %d (count %d)", u.Username, len(got.Articles), got.Count, len(want.Articles), want.Count)
		}
	}
	for ai, a := range w.articles {
		want := len(w.favorites[ai])
		list, err := db.Notifications(ctx, a.Author.ID, 100, conduit.NotificationCursor{})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, n := range list {
			if n.Kind == conduit.NotifyFavorite && n.Article != nil && n.Article.Slug == a.Slug {
				got += n.Others + 1
			}
		}
		if got != want {
			t.Errorf("article %s: favorite notifications count %d actors, %d favorited", a.Slug, got, want)
		}
	}
	if fromTimeline == 0 {
		t.Error("no timeline answered")
	}
}

// waitDrained waits until the outbox is empty and (with n) NATS holds no
// job, twice in a row.
func waitDrained(t *testing.T, db *store.DB, n *queue.NATS) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	calm := 0
	for calm < 2 {
		if time.Now().After(deadline) {
			stats, _ := db.JobStats(ctx)
			var waiting, inFlight uint64
			var err error
			if n != nil {
				waiting, inFlight, err = n.Pending(ctx)
			}
			t.Fatalf("queue not drained after 60s: outbox %+v, NATS waiting %d, in flight %d (%v)", stats, waiting, inFlight, err)
		}
		time.Sleep(100 * time.Millisecond)
		stats, err := db.JobStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		busy := false
		for _, s := range stats {
			busy = busy || s.Pending > 0
		}
		if n != nil {
			waiting, inFlight, err := n.Pending(ctx)
			busy = busy || err != nil || waiting > 0 || inFlight > 0
		}
		if busy {
			calm = 0
		} else {
			calm++
		}
	}
}

// Through NATS JetStream: writes before, during and after a NATS crash all
// get their effects (the outbox holds jobs while NATS is down; the relay
// publishes with Nats-Msg-Id; failed attempts are retried; a poison job
// becomes a dead letter).
func TestDeliveryThroughNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server")
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil)
		srv := natstest.Start(t)
		n, err := queue.DialNATS(srv.URL, testOpts)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		h := &flaky{h: conduit.NewJobs(db, conduit.FeedOptions{MaxFollowers: 5, TimelineCap: 4}), attempts: map[int64]int{}}
		relay := queue.NewRelay(db, n, testOpts)
		db.OnJobs(relay.Wake)
		consumer := queue.NewConsumer(n, db, h, testOpts)
		runCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); relay.Run(runCtx) }()
		go func() { defer wg.Done(); consumer.Run(runCtx) }()
		defer func() { stop(); wg.Wait() }()

		var w world
		w.write(t, db, 0)
		srv.Kill()
		w.write(t, db, 1) // NATS down: the writes succeed, their jobs wait
		if stats, _ := db.JobStats(ctx); len(stats) == 0 {
			t.Fatal("no job waits in the outbox while NATS is down")
		}
		srv.Restart(t)
		w.write(t, db, 2)
		poison := conduit.Job{Kind: "bogus", Key: "bogus:1", Payload: []byte(`{}`)}
		if err := db.Enqueue(ctx, poison); err != nil {
			t.Fatal(err)
		}
		waitDrained(t, db, n)
		w.check(t, db)
		if h.retried() == 0 {
			t.Error("no job was retried: the test did not test retries")
		}
		dead, err := db.DeadJobs(ctx, 10)
		if err != nil || len(dead) != 1 || dead[0].Kind != "bogus" {
			t.Fatalf("dead letters = %+v, %v; want the poison job only", dead, err)
		}
	})
}

// Straight from the outbox: a worker that died holding jobs (claimed, never
// finished) does not lose them: they run once its lease is over; failed
// attempts are retried.
func TestLocalDelivery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.OnJobs(nil)
		var w world
		w.write(t, db, 0)
		// A worker claims jobs and dies.
		if lost, err := db.ClaimJobs(ctx, 5, 500*time.Millisecond); err != nil || len(lost) != 5 {
			t.Fatalf("claim: %d, %v", len(lost), err)
		}
		h := &flaky{h: conduit.NewJobs(db, conduit.FeedOptions{MaxFollowers: 5, TimelineCap: 4}), attempts: map[int64]int{}}
		local := queue.NewLocal(db, h, testOpts)
		db.OnJobs(local.Wake)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { local.Run(runCtx); close(done) }()
		defer func() { stop(); <-done }()
		w.write(t, db, 1)
		waitDrained(t, db, nil)
		w.check(t, db)
		if h.retried() == 0 {
			t.Error("no job was retried")
		}
	})
}
