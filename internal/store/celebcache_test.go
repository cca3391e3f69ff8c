package store_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// celebrityFeed makes the shape the cache of the celebrities' articles is
// for: viewer follows a celebrity (more followers than MaxFollowers 2) with
// more articles than the cache keeps of one author (so deep pages and
// cursors go past it), a second celebrity with few, and an ordinary author,
// all jobs run. wide follows the same three and 300 others (past
// stateByFollows, where SQLite finds the celebrities followed the other
// way).
func celebrityFeed(t *testing.T, db *store.DB) (h *conduit.Jobs, viewer, wide, celeb, small, plain conduit.User) {
	t.Helper()
	db.OnJobs(nil)
	h = conduit.NewJobs(db, conduit.FeedOptions{MaxFollowers: 2, TimelineCap: 100})
	viewer, wide = mkUser(t, db, "viewer"), mkUser(t, db, "wide")
	celeb, small, plain = mkUser(t, db, "celeb"), mkUser(t, db, "small"), mkUser(t, db, "plain")
	fans := []conduit.User{viewer, wide, mkUser(t, db, "fan")}
	for _, f := range fans {
		for _, a := range []conduit.User{celeb, small} {
			if err := db.Follow(ctx, f.ID, a.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range fans[:2] {
		if err := db.Follow(ctx, f.ID, plain.ID); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		u := mkUser(t, db, fmt.Sprintf("other%d", i))
		if err := db.Follow(ctx, wide.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			mkArticle(t, db, u, fmt.Sprintf("o%d", i))
		}
	}
	runJobs(t, db, h, nil, false)
	for i := range 70 {
		mkArticle(t, db, celeb, fmt.Sprintf("c%d", i))
		if i%10 == 0 {
			mkArticle(t, db, plain, fmt.Sprintf("p%d", i))
			mkArticle(t, db, small, fmt.Sprintf("s%d", i))
		}
	}
	runJobs(t, db, h, nil, false)
	return h, viewer, wide, celeb, small, plain
}

// Every page of the feed equals the feed read from the follows, right
// after each change to a celebrity's articles or to the viewer's follows
// and before any job ran: with the celebrities' newest articles kept in
// the process (SQLite) the page must not show what was kept before the
// change.
func TestKeptCelebritiesStayCurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h, viewer, wide, celeb, small, _ := celebrityFeed(t, db)
		users := []conduit.User{viewer, wide}
		if n := checkFeeds(t, db, users); n == 0 {
			t.Fatal("no page was read from a timeline")
		}
		for _, u := range users {
			if n, err := db.CelebritiesFollowed(ctx, u.ID); err != nil || n != 2 {
				t.Fatalf("%s follows %d celebrities (%v); want 2", u.Username, n, err)
			}
		}
		if db.Dialect() == "sqlite" && db.CelebritiesKept() != 2 {
			t.Fatalf("%d celebrities kept; want 2", db.CelebritiesKept())
		}
		step := func(what string, change func()) {
			t.Helper()
			change()
			t.Run(what, func(t *testing.T) { checkFeeds(t, db, users) })
		}
		var newest conduit.Article
		step("publish", func() { newest = mkArticle(t, db, celeb, "c-new") })
		step("delete newest", func() {
			if err := db.DeleteArticle(ctx, newest.ID); err != nil {
				t.Fatal(err)
			}
		})
		step("delete older", func() {
			a, err := db.ArticleBySlug(ctx, 0, "s0")
			if err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteArticle(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
		})
		step("unfollow", func() {
			if err := db.Unfollow(ctx, viewer.ID, celeb.ID); err != nil {
				t.Fatal(err)
			}
		})
		step("unfollow's job", func() { runJobs(t, db, h, nil, false) })
		step("publish while unfollowed", func() { mkArticle(t, db, celeb, "c-unfollowed") })
		step("follow again", func() {
			if err := db.Follow(ctx, viewer.ID, celeb.ID); err != nil {
				t.Fatal(err)
			}
		})
		step("follow's job", func() { runJobs(t, db, h, nil, false) })
		step("publish by the small one", func() { mkArticle(t, db, small, "s-new") })
		if got, err := db.Feed(ctx, viewer.ID, conduit.ArticleFilter{Limit: 1}); err != nil ||
			len(got.Articles) != 1 || got.Articles[0].Slug != "s-new" {
			t.Fatalf("first of the feed after publishing = %v, %v; want [s-new]", slugsOf(got), err)
		}
	})
}

// Another process writing to the same SQLite file (a second handle here):
// what this one keeps of a celebrity is checked against the version the
// other's writes raised, so its next page shows the other's publish and
// delete at once.
func TestKeptCelebritiesSeeOtherWriters(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "conduit.db")
	open := func() *store.DB {
		db, err := store.OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	db, other := open(), open()
	other.OnJobs(nil)
	_, viewer, wide, celeb, _, _ := celebrityFeed(t, db)
	users := []conduit.User{viewer, wide}
	checkFeeds(t, db, users)
	if db.CelebritiesKept() != 2 {
		t.Fatalf("%d celebrities kept; want 2", db.CelebritiesKept())
	}
	a := conduit.Article{Slug: "elsewhere", Title: "T", Description: "D", Body: "B",
		CreatedAt: now(), UpdatedAt: now(), Author: conduit.Profile{ID: celeb.ID}}
	if err := other.CreateArticle(ctx, &a); err != nil {
		t.Fatal(err)
	}
	got, err := db.Feed(ctx, viewer.ID, conduit.ArticleFilter{Limit: 3})
	if err != nil || len(got.Articles) == 0 || got.Articles[0].Slug != "elsewhere" {
		t.Fatalf("feed after another process published = %v, %v; want elsewhere first", slugsOf(got), err)
	}
	checkFeeds(t, db, users)
	if err := other.DeleteArticle(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	checkFeeds(t, db, users)
}
