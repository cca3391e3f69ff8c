package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// PostgreSQL runs the one-statement writes that arrive while a group runs
// in one transaction (groupcommit_postgres.go). The test makes the groups
// itself: a lone write waits for a row the test holds, keeping the turn,
// while the writes under test queue; released, they run as one group.
// Each must get its own answer, as if it had run alone: the favorites'
// counts and repeats, the comments' limits within the group, a write whose
// request is gone; and when one write of a group fails, the others are
// still written, once.
func TestGroupedWritesPostgres(t *testing.T) {
	t.Parallel()
	url := storetest.NewMigratedPostgresDatabase(t)
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetWriteLanes(1) // every write in the groups the test makes
	author := mkUser(t, db, "author")
	var u []conduit.User
	for i := range 8 {
		u = append(u, mkUser(t, db, fmt.Sprintf("user%d", i)))
	}
	blocker := mkArticle(t, db, author, "blocker")
	fav := mkArticle(t, db, author, "fav", "go")
	busy := mkArticle(t, db, author, "busy")
	full := mkArticle(t, db, author, "full")
	doomed := mkArticle(t, db, author, "doomed")
	if err := db.DeleteArticle(ctx, doomed.ID); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	jobs := func() int {
		p, err := db.PendingJobs(ctx, 10000)
		if err != nil {
			t.Fatal(err)
		}
		return len(p)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waited 30 s for %s", what)
			}
		}
	}
	// group runs writes as one group and returns their errors, and how
	// many groups ran and writes they committed meanwhile.
	group := func(lone func() error, writes []func() error) (errs []error, groups, grouped int64) {
		t.Helper()
		_, _, g0, w0, _ := db.WriteGroupState()
		release, err := db.Hold(ctx, `UPDATE articles SET favorites_count = favorites_count WHERE id = ?`, blocker.ID)
		if err != nil {
			t.Fatal(err)
		}
		loneDone := make(chan error, 1)
		go func() { loneDone <- lone() }()
		waitFor("the lone write to run", func() bool { busy, pending, _, _, _ := db.WriteGroupState(); return busy && pending == 0 })
		errs = make([]error, len(writes))
		var wg sync.WaitGroup
		for i, w := range writes {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = w() }()
		}
		waitFor("the writes to queue", func() bool { _, pending, _, _, _ := db.WriteGroupState(); return pending == len(writes) })
		if err := release(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if err := <-loneDone; err != nil {
			t.Fatalf("the lone write: %v", err)
		}
		_, _, g1, w1, _ := db.WriteGroupState()
		return errs, g1 - g0, w1 - w0
	}
	favorite := func(ctx context.Context, who conduit.User, a conduit.Article) func() error {
		return func() error { _, err := db.Favorite(ctx, who.ID, a.ID, a.Author.ID); return err }
	}
	follow := func(ctx context.Context, who, whom conduit.User) func() error {
		return func() error { return db.Follow(ctx, who.ID, whom.ID) }
	}
	create := func(who conduit.User, slug string) func() error {
		return func() error {
			ts := now()
			return db.CreateArticle(ctx, &conduit.Article{Slug: slug, Title: slug, Description: "d", Body: "b",
				Tags: []string{"go", "sql"}, CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: who.ID}})
		}
	}
	comment := func(who conduit.User, a conduit.Article, max conduit.CommentLimits) func() error {
		return func() error {
			ts := now()
			c := conduit.Comment{ArticleID: a.ID, Author: conduit.Profile{ID: who.ID}, Body: "hi", CreatedAt: ts, UpdatedAt: ts}
			err := db.CreateComment(ctx, &c, max)
			if err == nil && c.ID == 0 {
				return errors.New("no comment id")
			}
			return err
		}
	}
	perAuthor := conduit.CommentLimits{PerArticle: 100, PerAuthor: 3}
	perArticle := conduit.CommentLimits{PerArticle: 2, PerAuthor: 100}
	isLimit := func(name string) func(error) bool {
		return func(err error) bool { var le *conduit.LimitError; return errors.As(err, &le) && le.Name == name }
	}
	// check compares each write's error with what it should be: nil, or
	// one that want accepts; want[i] may be nil for "no error".
	check := func(errs []error, want []func(error) bool) {
		t.Helper()
		for i, err := range errs {
			switch {
			case want[i] == nil && err != nil:
				t.Errorf("write %d: %v", i, err)
			case want[i] != nil && !want[i](err):
				t.Errorf("write %d: %v, not the error expected", i, err)
			}
		}
	}

	// A group where every write goes through.
	if err := db.Follow(ctx, u[5].ID, author.ID); err != nil {
		t.Fatal(err)
	}
	pending, err := db.PendingJobs(ctx, 1)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending jobs %v, %v; want one at least", pending, err)
	}
	completed := pending[0].ID
	j0 := jobs()
	writes := []func() error{
		favorite(ctx, u[1], fav), favorite(ctx, u[2], fav), favorite(ctx, u[3], fav), favorite(ctx, u[4], fav),
		favorite(ctx, u[1], fav), // a repeat: no change, no job
		func() error { _, err := db.Unfavorite(ctx, u[5].ID, fav.ID, author.ID); return err }, // not favorited
		follow(ctx, u[1], author), follow(ctx, u[2], author), follow(ctx, u[3], author),
		follow(gone, u[4], author), // its request is gone: not run
		create(u[6], "g1"), create(u[6], "g2"),
		comment(u[7], busy, perAuthor), comment(u[7], busy, perAuthor), comment(u[7], busy, perAuthor),
		comment(u[7], busy, perAuthor), comment(u[7], busy, perAuthor),
		comment(u[1], full, perArticle), comment(u[2], full, perArticle), comment(u[3], full, perArticle),
		func() error { return db.Unfollow(ctx, u[5].ID, author.ID) },
		func() error { return db.CompleteJob(ctx, completed) },
		func() error { return db.CompleteJob(ctx, completed) }, // a repeat: nothing to do
	}
	errs, groups, grouped := group(favorite(ctx, u[0], blocker), writes)
	if groups != 1 || grouped != int64(len(writes)-2) { // not the gone one, nor the comment refused at the article's bound
		t.Errorf("%d groups ran, committing %d writes; want 1 and %d", groups, grouped, len(writes)-2)
	}
	goneErr := func(err error) bool { return err != nil }
	want := make([]func(error) bool, len(writes))
	want[9] = goneErr
	var authorRefused, articleRefused int
	for i, err := range errs {
		switch {
		case i >= 12 && i < 17 && isLimit("per author on one article")(err):
			authorRefused++
			want[i] = goneErr
		case i >= 17 && i < 20 && isLimit("per article")(err):
			articleRefused++
			want[i] = goneErr
		}
	}
	check(errs, want)
	if authorRefused != 2 || articleRefused != 1 {
		t.Errorf("%d comments refused at the author's bound (want 2), %d at the article's (want 1)", authorRefused, articleRefused)
	}
	if n, err := db.FavoritesCount(ctx, fav.ID); n != 4 || err != nil {
		t.Errorf("favorites %d, %v; want 4", n, err)
	}
	for i, want := range []bool{false, true, true, true, false, false} {
		if ok, err := db.IsFollowing(ctx, u[i].ID, author.ID); ok != want || err != nil {
			t.Errorf("user%d follows the author: %v, %v; want %v", i, ok, err, want)
		}
	}
	for _, slug := range []string{"g1", "g2"} {
		if a, err := db.ArticleBySlug(ctx, 0, slug); err != nil || a.Author.ID != u[6].ID || len(a.Tags) != 2 {
			t.Errorf("article %s: %+v, %v", slug, a, err)
		}
	}
	for a, n := range map[int64]int{busy.ID: 3, full.ID: 2} {
		if p, err := db.Comments(ctx, 0, a, conduit.CommentFilter{Limit: 10}); err != nil || p.Count != n || len(p.Comments) != n {
			t.Errorf("article %d: %d comments counted, %d there, %v; want %d", a, p.Count, len(p.Comments), err, n)
		}
	}
	// Jobs: 4 favorites and the lone one, 3 follows of 2, 2 articles, 5
	// comments, 1 unfollow; none for the repeat, the unfavorite, the gone
	// follow or the refused comments; one completed.
	wantJobs := 5 + 3*len(conduit.FollowedJobs(1, 2)) + 2 + 5 + len(conduit.UnfollowedJobs(1, 2)) - 1
	if got := jobs() - j0; got != wantJobs {
		t.Errorf("%d jobs enqueued, want %d", got, wantJobs)
	}
	if p, err := db.PendingJobs(ctx, 10000); err != nil || slices.ContainsFunc(p, func(j conduit.PendingJob) bool { return j.ID == completed }) {
		t.Errorf("job %d is still pending after it was completed (%v)", completed, err)
	}
	if err := db.CheckIntegrity(ctx); err != nil {
		t.Error(err)
	}

	// A group where one write fails: the others are written once, the
	// failing ones get their own errors.
	j0 = jobs()
	writes = []func() error{
		create(u[1], "fav"), // a taken slug
		favorite(ctx, u[5], fav),
		comment(u[2], doomed, perArticle), // a deleted article
		follow(ctx, u[6], u[7]),
		comment(u[4], busy, perAuthor),
	}
	errs, groups, grouped = group(func() error { _, err := db.Unfavorite(ctx, u[0].ID, blocker.ID, author.ID); return err }, writes)
	if groups != 1 || grouped != 0 {
		t.Errorf("%d groups ran, committing %d writes; want 1 group that committed none (each ran again alone)", groups, grouped)
	}
	var dup *conduit.DuplicateError
	check(errs, []func(error) bool{
		func(err error) bool { return errors.As(err, &dup) && dup.Field == "slug" },
		nil,
		func(err error) bool { return errors.Is(err, conduit.ErrNotFound) },
		nil, nil,
	})
	if n, err := db.FavoritesCount(ctx, fav.ID); n != 5 || err != nil {
		t.Errorf("favorites %d, %v; want 5", n, err)
	}
	if ok, err := db.IsFollowing(ctx, u[6].ID, u[7].ID); !ok || err != nil {
		t.Errorf("user6 follows user7: %v, %v", ok, err)
	}
	if p, err := db.Comments(ctx, 0, busy.ID, conduit.CommentFilter{Limit: 10}); err != nil || p.Count != 4 {
		t.Errorf("busy: %d comments, %v; want 4", p.Count, err)
	}
	if got, want := jobs()-j0, 1+len(conduit.FollowedJobs(1, 2))+1; got != want {
		t.Errorf("%d jobs enqueued, want %d", got, want)
	}
	if err := db.CheckIntegrity(ctx); err != nil {
		t.Error(err)
	}
}

// With several lanes (the default), groups of different lanes run side by
// side; they lock no row in common, so none waits for another, and no
// group fails: many writers favoring, commenting on and creating articles
// and following each other at once all succeed in groups, none run again
// alone (which a deadlock between groups would cause), with every count
// right afterwards.
func TestGroupedWriteLanesPostgres(t *testing.T) {
	t.Parallel()
	url := storetest.NewMigratedPostgresDatabase(t)
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const writers, rounds = 16, 12
	var users []conduit.User
	var articles []conduit.Article
	for i := range writers {
		users = append(users, mkUser(t, db, fmt.Sprintf("writer%d", i)))
		articles = append(articles, mkArticle(t, db, users[i], fmt.Sprintf("start%d", i), "go"))
	}
	tags := []string{"go", "sql", "pg"} // two of them per article, in either order
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds*4)
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				// Every writer favors and comments on the same few
				// articles, in different orders, and creates with tags
				// others use: the rows groups would fight over.
				a := articles[(i+r)%4]
				if _, err := db.Favorite(ctx, u.ID, a.ID, a.Author.ID); err != nil {
					errs <- err
				}
				ts := now()
				c := conduit.Comment{ArticleID: articles[(i*3+r)%4].ID, Author: conduit.Profile{ID: u.ID}, Body: "hi", CreatedAt: ts, UpdatedAt: ts}
				if err := db.CreateComment(ctx, &c, roomy); err != nil {
					errs <- err
				}
				if err := db.Follow(ctx, u.ID, users[(i+r+1)%writers].ID); err != nil {
					errs <- err
				}
				if err := db.CreateArticle(ctx, &conduit.Article{Slug: fmt.Sprintf("w%d-%d", i, r), Title: "t", Description: "d", Body: "b",
					Tags: []string{tags[r%3], tags[(r+1+i%2)%3]}, CreatedAt: ts, UpdatedAt: ts,
					Author: conduit.Profile{ID: u.ID}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, _, groups, grouped, reruns := db.WriteGroupState()
	t.Logf("%d groups of %d writes in all (%d writes)", groups, grouped, writers*rounds*4)
	if reruns != 0 {
		t.Errorf("%d writes ran again alone after their group failed; want none", reruns)
	}
	for _, a := range articles[:4] {
		n, err := db.FavoritesCount(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n != writers { // every writer favored each of the four (rounds >= 4)
			t.Errorf("article %s: %d favorites, want %d", a.Slug, n, writers)
		}
	}
	if err := db.CheckIntegrity(ctx); err != nil {
		t.Error(err)
	}
}
