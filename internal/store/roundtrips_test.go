package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// The statements (round trips) each write sends on PostgreSQL, counted
// from the pool's per-statement spans: docs/performance.md, "Writes
// against a peer". A bound here that breaks means a write got a round trip
// more; raise it only knowingly.
func TestWriteRoundTripsPostgres(t *testing.T) {
	t.Parallel()
	url := storetest.NewMigratedPostgresDatabase(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 2, Tracer: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	listener, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	woken := make(chan struct{}, 100)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go listener.ListenJobs(lctx, func() { woken <- struct{}{} }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	select {
	case <-woken: // listening
	case <-time.After(20 * time.Second):
		t.Fatal("ListenJobs never listened")
	}
	drain := func() {
		time.Sleep(50 * time.Millisecond)
		for len(woken) > 0 {
			<-woken
		}
	}
	heard := func() bool {
		select {
		case <-woken:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}

	// statements runs write under a recording span and returns the
	// statements it sent.
	statements := func(write func(context.Context) error) []string {
		t.Helper()
		before := len(rec.Ended())
		wctx, span := tp.Tracer("test").Start(ctx, "write")
		if err := write(wctx); err != nil {
			t.Fatal(err)
		}
		span.End()
		var out []string
		for _, s := range rec.Ended()[before:] {
			switch s.Name() {
			case "write":
			case "batch": // one round trip: its statements as events
				var ops []string
				for _, e := range s.Events() {
					ops = append(ops, e.Name)
				}
				out = append(out, "batch["+strings.Join(ops, " ")+"]")
			default:
				out = append(out, s.Name())
			}
		}
		return out
	}
	alice, bob := mkUser(t, db, "alice"), mkUser(t, db, "bob")
	a := mkArticle(t, db, alice, "first", "go")
	jobs := func() int {
		p, err := db.PendingJobs(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(p)
	}

	drain()
	j0 := jobs()
	var fc conduit.FavoriteChange
	got := statements(func(ctx context.Context) (err error) { fc, err = db.Favorite(ctx, bob.ID, a.ID, a.Author.ID); return })
	if want := []string{"WITH"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("favorite sent %v, want %v", got, want)
	}
	if fc.Count != 1 || jobs() != j0+1 {
		t.Errorf("favorite: count %d, %d jobs enqueued, want 1 and 1", fc.Count, jobs()-j0)
	}
	if !heard() {
		t.Error("the favorite's jobs woke no listener")
	}
	// A repeat changes nothing, enqueues nothing, wakes nobody.
	drain()
	got = statements(func(ctx context.Context) (err error) { fc, err = db.Favorite(ctx, bob.ID, a.ID, a.Author.ID); return })
	if len(got) != 1 || fc.Count != 1 || jobs() != j0+1 {
		t.Errorf("repeated favorite: %v, count %d, %d jobs enqueued", got, fc.Count, jobs()-j0)
	}
	got = statements(func(ctx context.Context) (err error) { fc, err = db.Unfavorite(ctx, bob.ID, a.ID, a.Author.ID); return })
	if len(got) != 1 || fc.Count != 0 || jobs() != j0+1 {
		t.Errorf("unfavorite: %v, count %d, %d jobs enqueued", got, fc.Count, jobs()-j0)
	}
	got = statements(func(ctx context.Context) (err error) { fc, err = db.Unfavorite(ctx, bob.ID, a.ID, a.Author.ID); return })
	if len(got) != 1 || fc.Count != 0 {
		t.Errorf("repeated unfavorite: %v, count %d", got, fc.Count)
	}
	select {
	case <-woken:
		t.Error("a favorite that changed nothing, or an unfavorite, woke a listener")
	case <-time.After(200 * time.Millisecond):
	}

	// The wake-up is sent after the commit, outside the write (jobnotify.go):
	// no SELECT pg_notify in it.
	// A follow is one statement too (followOnce), with its jobs.
	drain()
	j0 = jobs()
	got = statements(func(ctx context.Context) error { return db.Follow(ctx, bob.ID, alice.ID) })
	if want := "WITH"; strings.Join(got, " ") != want {
		t.Errorf("follow sent %v, want %s", got, want)
	}
	if jobs() != j0+len(conduit.FollowedJobs(bob.ID, alice.ID)) {
		t.Errorf("follow enqueued %d jobs, want %d", jobs()-j0, len(conduit.FollowedJobs(bob.ID, alice.ID)))
	}
	if !heard() {
		t.Error("the follow's jobs woke no listener")
	}
	// A repeat changes nothing: no jobs, no wake-up.
	got = statements(func(ctx context.Context) error { return db.Follow(ctx, bob.ID, alice.ID) })
	if len(got) != 1 || jobs() != j0+len(conduit.FollowedJobs(bob.ID, alice.ID)) {
		t.Errorf("repeated follow: %v, %d jobs enqueued", got, jobs()-j0)
	}
	select {
	case <-woken:
		t.Error("a follow that changed nothing woke a listener")
	case <-time.After(200 * time.Millisecond):
	}
	got = statements(func(ctx context.Context) error {
		ts := now()
		return db.CreateArticle(ctx, &conduit.Article{Slug: "second", Title: "Second", Description: "d", Body: "b",
			Tags: []string{"go", "sql"}, CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: alice.ID}})
	})
	if want := "SELECT WITH"; strings.Join(got, " ") != want {
		t.Errorf("article create sent %v, want %s", got, want)
	}
	if !heard() {
		t.Error("the article's jobs woke no listener")
	}
	// A taken slug, current or old, fails the one statement whole: a
	// DuplicateError, and no count moved.
	if err := db.UpdateArticle(ctx, &conduit.Article{ID: a.ID, Slug: "first-renamed", Title: "First renamed", Description: "d", Body: "b",
		Tags: []string{"go"}, UpdatedAt: now(), Author: conduit.Profile{ID: alice.ID}}); err != nil {
		t.Fatal(err)
	}
	total := func() int {
		p, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return p.Count
	}
	n0, tags0 := total(), mustTags(t, db)
	for _, slug := range []string{"second", "first"} { // current, then old
		ts := now()
		err := db.CreateArticle(ctx, &conduit.Article{Slug: slug, Title: "Again", Description: "d", Body: "b",
			Tags: []string{"dup-only"}, CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: alice.ID}})
		var dup *conduit.DuplicateError
		if !errors.As(err, &dup) || dup.Field != "slug" {
			t.Errorf("create with the taken slug %q: %v, want a DuplicateError on slug", slug, err)
		}
	}
	if n, tags := total(), mustTags(t, db); n != n0 || strings.Join(tags, ",") != strings.Join(tags0, ",") {
		t.Errorf("after refused creates: %d articles, tags %v; want %d, %v", n, tags, n0, tags0)
	}
	drain()
	j1 := jobs()
	cm := conduit.Comment{ArticleID: a.ID, Author: conduit.Profile{ID: bob.ID}, Body: "hi", CreatedAt: now(), UpdatedAt: now()}
	got = statements(func(ctx context.Context) error { return db.CreateComment(ctx, &cm, roomy) })
	// Pipelined: two round trips on one connection.
	if want := "batch[BEGIN WITH] batch[WITH COMMIT]"; strings.Join(got, " ") != want {
		t.Errorf("comment sent %v, want %s", got, want)
	}
	if cm.ID == 0 || jobs() != j1+1 {
		t.Errorf("comment: id %d, %d jobs enqueued", cm.ID, jobs()-j1)
	}
	if !heard() {
		t.Error("the comment's jobs woke no listener")
	}
	cs, err := db.Comments(ctx, 0, a.ID, conduit.CommentFilter{Limit: 10})
	if err != nil || len(cs.Comments) != 1 || cs.Count != 1 || cs.Comments[0].ID != cm.ID || cs.Comments[0].Body != "hi" {
		t.Errorf("comments %+v, %v; want the one with id %d", cs, err, cm.ID)
	}

	// A worker's bookkeeping (queue.Local): the done jobs of a batch are
	// deleted by one statement, or by the next claim in its transaction.
	claimed, err := db.ClaimJobs(ctx, 3, time.Minute)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %d jobs, %v", len(claimed), err)
	}
	j2 := jobs()
	got = statements(func(ctx context.Context) error {
		next, err := db.ClaimJobs(ctx, 2, time.Minute, claimed[0].ID, claimed[1].ID)
		claimed = append(claimed[2:], next...)
		return err
	})
	if want := "BEGIN DELETE UPDATE COMMIT"; strings.Join(got, " ") != want {
		t.Errorf("a claim with done jobs sent %v, want %s", got, want)
	}
	if len(claimed) != 3 || jobs() != j2-2 {
		t.Errorf("a claim with two done jobs: %d jobs in hand, %d deleted; want 3 and 2", len(claimed), j2-jobs())
	}
	got = statements(func(ctx context.Context) error {
		return db.CompleteJobs(ctx, claimed[0].ID, claimed[1].ID, claimed[2].ID)
	})
	if want := "DELETE"; strings.Join(got, " ") != want {
		t.Errorf("CompleteJobs of three jobs sent %v, want %s", got, want)
	}
	if jobs() != j2-5 {
		t.Errorf("CompleteJobs of three jobs deleted %d", j2-2-jobs())
	}
}

func mustTags(t *testing.T, db *store.DB) []string {
	t.Helper()
	tags, err := db.Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}
