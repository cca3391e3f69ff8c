package store_test

// The store contract: every behaviour conduit.Store promises, checked on
// each backend storetest knows (SQLite always, PostgreSQL when
// CONDUIT_TEST_POSTGRES_URL is set).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

var ctx = context.Background()

// now is a timestamp both databases store exactly (microseconds, UTC).
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func mkUser(t testing.TB, db *store.DB, name string) conduit.User {
	t.Helper()
	ts := now()
	u := conduit.User{Username: name, Email: name + "@example.com", PasswordHash: "hash-" + name,
		Bio: "bio of " + name, Image: "https://img.example/" + name, CreatedAt: ts, UpdatedAt: ts}
	if err := db.CreateUser(ctx, &u); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

func mkArticle(t testing.TB, db *store.DB, author conduit.User, slug string, tags ...string) conduit.Article {
	t.Helper()
	ts := now()
	a := conduit.Article{Slug: slug, Title: "Title " + slug, Description: "about " + slug, Body: "body of " + slug,
		Tags: tags, CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: author.ID}}
	if err := db.CreateArticle(ctx, &a); err != nil {
		t.Fatalf("create article %s: %v", slug, err)
	}
	return a
}

// roomy are comment limits no test here reaches (comments_test.go tests
// the limits).
var roomy = conduit.CommentLimits{PerArticle: 1 << 20, PerAuthor: 1 << 20}

func wantDuplicate(t testing.TB, err error, field string) {
	t.Helper()
	var dup *conduit.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("got %v, want a DuplicateError on %s", err, field)
	}
	if dup.Field != field {
		t.Fatalf("DuplicateError on %q, want %q", dup.Field, field)
	}
}

func wantNotFound(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, conduit.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func slugs(as []conduit.Article) []string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.Slug
	}
	return s
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		n, err := db.Migrate(ctx)
		if err != nil || n != 0 {
			t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
		}
		if err := db.CheckSchema(ctx); err != nil {
			t.Fatalf("CheckSchema: %v", err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func TestUsers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		alice := mkUser(t, db, "Alice")
		if alice.ID == 0 {
			t.Fatal("CreateUser did not set the ID")
		}
		bob := mkUser(t, db, "bob")
		if bob.ID == alice.ID {
			t.Fatal("two users got the same ID")
		}

		for name, get := range map[string]func() (conduit.User, error){
			"by id":                 func() (conduit.User, error) { return db.UserByID(ctx, alice.ID) },
			"by email":              func() (conduit.User, error) { return db.UserByEmail(ctx, "Alice@example.com") },
			"by username any case":  func() (conduit.User, error) { return db.UserByUsername(ctx, "aLiCe") },
			"by username same case": func() (conduit.User, error) { return db.UserByUsername(ctx, "Alice") },
		} {
			got, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.ID != alice.ID || got.Username != "Alice" || got.Email != alice.Email ||
				got.PasswordHash != alice.PasswordHash || got.Bio != alice.Bio || got.Image != alice.Image {
				t.Fatalf("%s: got %+v, want %+v", name, got, alice)
			}
			if !got.CreatedAt.Equal(alice.CreatedAt) || !got.UpdatedAt.Equal(alice.UpdatedAt) {
				t.Fatalf("%s: times %v/%v, want %v/%v", name, got.CreatedAt, got.UpdatedAt, alice.CreatedAt, alice.UpdatedAt)
			}
		}

		_, err := db.UserByID(ctx, 987654)
		wantNotFound(t, err)
		_, err = db.UserByEmail(ctx, "nobody@example.com")
		wantNotFound(t, err)
		_, err = db.UserByUsername(ctx, "nobody")
		wantNotFound(t, err)

		ts := now()
		dupName := conduit.User{Username: "ALICE", Email: "other@example.com", PasswordHash: "x", CreatedAt: ts, UpdatedAt: ts}
		wantDuplicate(t, db.CreateUser(ctx, &dupName), "username")
		dupMail := conduit.User{Username: "carol", Email: "Alice@example.com", PasswordHash: "x", CreatedAt: ts, UpdatedAt: ts}
		wantDuplicate(t, db.CreateUser(ctx, &dupMail), "email")

		// Update every field.
		later := ts.Add(time.Hour)
		bob.Username, bob.Email, bob.PasswordHash, bob.Bio, bob.Image, bob.UpdatedAt =
			"robert", "robert@example.com", "newhash", "new bio", "", later
		if err := db.UpdateUser(ctx, &bob, false); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		got, err := db.UserByID(ctx, bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != "robert" || got.Email != "robert@example.com" || got.PasswordHash != "newhash" ||
			got.Bio != "new bio" || got.Image != "" || !got.UpdatedAt.Equal(later) || !got.CreatedAt.Equal(bob.CreatedAt) {
			t.Fatalf("after update got %+v", got)
		}
		if _, err := db.UserByUsername(ctx, "bob"); !errors.Is(err, conduit.ErrNotFound) {
			t.Fatalf("old username still found: %v", err)
		}

		taken := got
		taken.Email = alice.Email
		wantDuplicate(t, db.UpdateUser(ctx, &taken, false), "email")
		taken = got
		taken.Username = "alice"
		wantDuplicate(t, db.UpdateUser(ctx, &taken, false), "username")
		if again, _ := db.UserByID(ctx, bob.ID); again.Email != "robert@example.com" || again.Username != "robert" {
			t.Fatalf("failed update changed the row: %+v", again)
		}

		ghost := conduit.User{ID: 987654, Username: "ghost", Email: "ghost@example.com", UpdatedAt: ts}
		wantNotFound(t, db.UpdateUser(ctx, &ghost, false))
	})
}

func TestFollows(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a, b := mkUser(t, db, "a"), mkUser(t, db, "b")
		isF := func(x, y int64) bool {
			t.Helper()
			ok, err := db.IsFollowing(ctx, x, y)
			if err != nil {
				t.Fatalf("IsFollowing: %v", err)
			}
			return ok
		}
		if isF(a.ID, b.ID) || isF(0, b.ID) {
			t.Fatal("following before Follow")
		}
		for range 2 { // repeating is a no-op
			if err := db.Follow(ctx, a.ID, b.ID); err != nil {
				t.Fatalf("Follow: %v", err)
			}
		}
		if !isF(a.ID, b.ID) {
			t.Fatal("a does not follow b after Follow")
		}
		if isF(b.ID, a.ID) {
			t.Fatal("follow is not directional")
		}
		for range 2 {
			if err := db.Unfollow(ctx, a.ID, b.ID); err != nil {
				t.Fatalf("Unfollow: %v", err)
			}
		}
		if isF(a.ID, b.ID) {
			t.Fatal("still following after Unfollow")
		}
	})
}

func TestArticles(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		author, reader := mkUser(t, db, "author"), mkUser(t, db, "reader")
		a := mkArticle(t, db, author, "first-post", "go", "sql")
		if a.ID == 0 {
			t.Fatal("CreateArticle did not set the ID")
		}

		got, err := db.ArticleBySlug(ctx, 0, "first-post")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != a.ID || got.Title != a.Title || got.Description != a.Description || got.Body != a.Body ||
			!slices.Equal(got.Tags, []string{"go", "sql"}) || got.FavoritesCount != 0 || got.Favorited ||
			got.Author.ID != author.ID || got.Author.Username != "author" || got.Author.Bio != author.Bio ||
			got.Author.Image != author.Image || got.Author.Following ||
			!got.CreatedAt.Equal(a.CreatedAt) || !got.UpdatedAt.Equal(a.UpdatedAt) {
			t.Fatalf("ArticleBySlug = %+v, want %+v", got, a)
		}

		// The viewer's flags.
		if err := db.Follow(ctx, reader.ID, author.ID); err != nil {
			t.Fatal(err)
		}
		// The favorite reads the following flag in its own statement.
		if fc, err := db.Favorite(ctx, reader.ID, a.ID, a.Author.ID); err != nil || fc.Count != 1 || !fc.FollowsAuthor {
			t.Fatalf("Favorite = %+v, %v; want count 1, following the author", fc, err)
		}
		got, err = db.ArticleBySlug(ctx, reader.ID, "first-post")
		if err != nil {
			t.Fatal(err)
		}
		if !got.Favorited || !got.Author.Following || got.FavoritesCount != 1 {
			t.Fatalf("reader sees favorited=%v following=%v count=%d", got.Favorited, got.Author.Following, got.FavoritesCount)
		}
		if got, _ := db.ArticleBySlug(ctx, author.ID, "first-post"); got.Favorited || got.Author.Following {
			t.Fatal("the author sees the reader's flags")
		}

		_, err = db.ArticleBySlug(ctx, 0, "no-such-post")
		wantNotFound(t, err)

		dup := conduit.Article{Slug: "first-post", Title: "t", Description: "d", Body: "b",
			CreatedAt: now(), UpdatedAt: now(), Author: conduit.Profile{ID: author.ID}}
		wantDuplicate(t, db.CreateArticle(ctx, &dup), "slug")

		// Update: new slug, tags replaced.
		other := mkArticle(t, db, author, "second-post")
		later := now().Add(time.Minute)
		a.Slug, a.Title, a.Description, a.Body, a.Tags, a.UpdatedAt = "renamed", "New title", "new desc", "new body", []string{"sql", "zig"}, later
		if err := db.UpdateArticle(ctx, &a); err != nil {
			t.Fatalf("UpdateArticle: %v", err)
		}
		if _, err := db.ArticleBySlug(ctx, 0, "first-post"); !errors.Is(err, conduit.ErrNotFound) {
			t.Fatalf("old slug still found: %v", err)
		}
		got, err = db.ArticleBySlug(ctx, 0, "renamed")
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != "New title" || got.Description != "new desc" || got.Body != "new body" ||
			!slices.Equal(got.Tags, []string{"sql", "zig"}) || !got.UpdatedAt.Equal(later) ||
			!got.CreatedAt.Equal(a.CreatedAt) || got.FavoritesCount != 1 {
			t.Fatalf("after update: %+v", got)
		}
		clash := a
		clash.Slug = other.Slug
		wantDuplicate(t, db.UpdateArticle(ctx, &clash), "slug")
		ghost := a
		ghost.ID = 987654
		ghost.Slug = "ghost"
		wantNotFound(t, db.UpdateArticle(ctx, &ghost))

		// Deleting cascades to tags, favorites and comments.
		c := conduit.Comment{ArticleID: a.ID, Body: "hi", CreatedAt: now(), UpdatedAt: now(), Author: conduit.Profile{ID: reader.ID}}
		if err := db.CreateComment(ctx, &c, roomy); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteArticle(ctx, a.ID); err != nil {
			t.Fatalf("DeleteArticle: %v", err)
		}
		wantNotFound(t, db.DeleteArticle(ctx, a.ID))
		if _, err := db.ArticleBySlug(ctx, 0, "renamed"); !errors.Is(err, conduit.ErrNotFound) {
			t.Fatalf("deleted article found: %v", err)
		}
		if ok, err := db.IsFavorited(ctx, reader.ID, a.ID); err != nil || ok {
			t.Fatalf("favorite survived its article: %v, %v", ok, err)
		}
		if page, err := db.Comments(ctx, 0, a.ID, conduit.CommentFilter{Limit: 10}); err != nil || len(page.Comments) != 0 || page.Count != 0 {
			t.Fatalf("comments survived their article: %+v, %v", page, err)
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Fatal(err) // the article's comment counter went with it
		}
		_, err = db.CommentByID(ctx, a.ID, c.ID)
		wantNotFound(t, err)
		if tags, err := db.Tags(ctx); err != nil || len(tags) != 0 {
			t.Fatalf("tags survived their article: %v, %v", tags, err)
		}
		// The other article is untouched.
		if _, err := db.ArticleBySlug(ctx, 0, other.Slug); err != nil {
			t.Fatalf("unrelated article: %v", err)
		}
	})
}

// A failed statement inside a write leaves nothing behind: the article
// insert is rolled back when its tags cannot be stored.
func TestNoPartialWrites(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := mkUser(t, db, "writer")
		bad := conduit.Article{Slug: "half", Title: "t", Description: "d", Body: "b", Tags: []string{"x", "x"},
			CreatedAt: now(), UpdatedAt: now(), Author: conduit.Profile{ID: u.ID}}
		if err := db.CreateArticle(ctx, &bad); err == nil {
			t.Fatal("CreateArticle with a repeated tag succeeded")
		}
		if _, err := db.ArticleBySlug(ctx, 0, "half"); !errors.Is(err, conduit.ErrNotFound) {
			t.Fatalf("the article row of a failed create exists: %v", err)
		}
		page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Limit: 10})
		if err != nil || page.Count != 0 {
			t.Fatalf("list after failed create: %d, %v", page.Count, err)
		}

		good := mkArticle(t, db, u, "whole", "a", "b")
		upd := good
		upd.Title, upd.Slug, upd.Tags = "changed", "whole-changed", []string{"c", "c"}
		if err := db.UpdateArticle(ctx, &upd); err == nil {
			t.Fatal("UpdateArticle with a repeated tag succeeded")
		}
		got, err := db.ArticleBySlug(ctx, 0, "whole")
		if err != nil {
			t.Fatalf("article after failed update: %v", err)
		}
		if got.Title != good.Title || !slices.Equal(got.Tags, []string{"a", "b"}) {
			t.Fatalf("failed update left %q %v", got.Title, got.Tags)
		}

		// A favorite of a missing article changes nothing.
		if _, err := db.Favorite(ctx, u.ID, 987654, 0); err == nil {
			t.Fatal("favorite of a missing article succeeded")
		}
		if ok, _ := db.IsFavorited(ctx, u.ID, 987654); ok {
			t.Fatal("favorite row of a missing article exists")
		}
	})
}

func TestListArticles(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ann, ben, cat := mkUser(t, db, "Ann"), mkUser(t, db, "ben"), mkUser(t, db, "cat")
		// Created in this order; lists are newest first.
		mkArticle(t, db, ann, "a1", "go")
		mkArticle(t, db, ben, "b1", "go", "db")
		a2 := mkArticle(t, db, ann, "a2", "db")
		b2 := mkArticle(t, db, ben, "b2")
		mkArticle(t, db, ann, "a3", "go")
		if _, err := db.Favorite(ctx, cat.ID, a2.ID, a2.Author.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Favorite(ctx, cat.ID, b2.ID, b2.Author.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.Follow(ctx, cat.ID, ann.ID); err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct {
			name  string
			f     conduit.ArticleFilter
			want  []string
			count int
		}{
			{"all", conduit.ArticleFilter{Limit: 20}, []string{"a3", "b2", "a2", "b1", "a1"}, 5},
			{"first page", conduit.ArticleFilter{Limit: 2}, []string{"a3", "b2"}, 5},
			{"second page", conduit.ArticleFilter{Limit: 2, Offset: 2}, []string{"a2", "b1"}, 5},
			{"last page", conduit.ArticleFilter{Limit: 2, Offset: 4}, []string{"a1"}, 5},
			{"past the end", conduit.ArticleFilter{Limit: 2, Offset: 9}, []string{}, 5},
			{"tag", conduit.ArticleFilter{Tag: "go", Limit: 20}, []string{"a3", "b1", "a1"}, 3},
			{"tag paged", conduit.ArticleFilter{Tag: "go", Limit: 1, Offset: 1}, []string{"b1"}, 3},
			{"unknown tag", conduit.ArticleFilter{Tag: "rust", Limit: 20}, []string{}, 0},
			{"author any case", conduit.ArticleFilter{Author: "ANN", Limit: 20}, []string{"a3", "a2", "a1"}, 3},
			{"unknown author", conduit.ArticleFilter{Author: "nobody", Limit: 20}, []string{}, 0},
			{"favorited by", conduit.ArticleFilter{FavoritedBy: "Cat", Limit: 20}, []string{"b2", "a2"}, 2},
			{"author and tag", conduit.ArticleFilter{Author: "ann", Tag: "db", Limit: 20}, []string{"a2"}, 1},
			{"all three", conduit.ArticleFilter{Author: "ben", Tag: "db", FavoritedBy: "cat", Limit: 20}, []string{}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				page, err := db.ListArticles(ctx, cat.ID, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if page.Count != tc.count || !slices.Equal(slugs(page.Articles), tc.want) {
					t.Fatalf("got %v (count %d), want %v (count %d)", slugs(page.Articles), page.Count, tc.want, tc.count)
				}
			})
		}

		page, err := db.ListArticles(ctx, cat.ID, conduit.ArticleFilter{Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Articles {
			if a.Body != "" {
				t.Errorf("%s: lists must not carry the body", a.Slug)
			}
			if a.Tags == nil {
				t.Errorf("%s: Tags is nil, want empty or filled", a.Slug)
			}
			wantFav := a.Slug == "a2" || a.Slug == "b2"
			if a.Favorited != wantFav || (a.FavoritesCount == 1) != wantFav {
				t.Errorf("%s: favorited=%v count=%d", a.Slug, a.Favorited, a.FavoritesCount)
			}
			if a.Author.Following != (a.Author.ID == ann.ID) {
				t.Errorf("%s: following=%v", a.Slug, a.Author.Following)
			}
			if a.Slug == "b1" && !slices.Equal(a.Tags, []string{"db", "go"}) {
				t.Errorf("b1 tags = %v", a.Tags)
			}
		}
		anon, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range anon.Articles {
			if a.Favorited || a.Author.Following {
				t.Errorf("anonymous viewer sees flags on %s", a.Slug)
			}
		}

		if db.Dialect() != "sqlite" {
			return // PostgreSQL pages ids from articles_pkey, an index apart from the rows
		}
		// A deep page skips index entries, not table rows (bodies and all).
		q, args := db.GlobalListQuery(cat.ID, conduit.ArticleFilter{Limit: 20, Offset: 10_000})
		_, all := planOf(t, db, q, args)
		if !strings.Contains(all, "SCAN articles USING COVERING INDEX articles_id_idx") {
			t.Errorf("the global list does not page its ids from articles_id_idx:\n%s", all)
		}
	})
}

func TestFeed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		me, x, y, z := mkUser(t, db, "me"), mkUser(t, db, "x"), mkUser(t, db, "y"), mkUser(t, db, "z")
		mkArticle(t, db, x, "x1")
		mkArticle(t, db, y, "y1")
		mkArticle(t, db, z, "z1")
		mkArticle(t, db, x, "x2")
		mkArticle(t, db, me, "mine")

		page, err := db.Feed(ctx, me.ID, conduit.ArticleFilter{Limit: 10, Offset: 0})
		if err != nil || page.Count != 0 || len(page.Articles) != 0 {
			t.Fatalf("feed before following: %v (%d), %v", slugs(page.Articles), page.Count, err)
		}
		for _, u := range []conduit.User{x, z} {
			if err := db.Follow(ctx, me.ID, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		page, err = db.Feed(ctx, me.ID, conduit.ArticleFilter{Limit: 10, Offset: 0})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"x2", "z1", "x1"}; page.Count != 3 || !slices.Equal(slugs(page.Articles), want) {
			t.Fatalf("feed = %v (%d), want %v", slugs(page.Articles), page.Count, want)
		}
		for _, a := range page.Articles {
			if !a.Author.Following || a.Body != "" {
				t.Errorf("%s: following=%v body=%q", a.Slug, a.Author.Following, a.Body)
			}
		}
		page, err = db.Feed(ctx, me.ID, conduit.ArticleFilter{Limit: 1, Offset: 1})
		if err != nil || page.Count != 3 || !slices.Equal(slugs(page.Articles), []string{"z1"}) {
			t.Fatalf("feed page 2: %v (%d), %v", slugs(page.Articles), page.Count, err)
		}
		if err := db.Unfollow(ctx, me.ID, z.ID); err != nil {
			t.Fatal(err)
		}
		page, err = db.Feed(ctx, me.ID, conduit.ArticleFilter{Limit: 10, Offset: 0})
		if err != nil || !slices.Equal(slugs(page.Articles), []string{"x2", "x1"}) {
			t.Fatalf("feed after unfollow: %v, %v", slugs(page.Articles), err)
		}
	})
}

func TestFavorites(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		author, u1, u2 := mkUser(t, db, "author"), mkUser(t, db, "u1"), mkUser(t, db, "u2")
		a := mkArticle(t, db, author, "fav")
		steps := []struct {
			fav  bool
			user conduit.User
			want int
		}{
			{true, u1, 1}, {true, u1, 1}, {true, u2, 2}, {false, u1, 1}, {false, u1, 1}, {false, u2, 0}, {false, u2, 0},
		}
		for i, s := range steps {
			var fc conduit.FavoriteChange
			var err error
			if s.fav {
				fc, err = db.Favorite(ctx, s.user.ID, a.ID, a.Author.ID)
			} else {
				fc, err = db.Unfavorite(ctx, s.user.ID, a.ID, a.Author.ID)
			}
			if err != nil || fc.Count != s.want || fc.FollowsAuthor {
				t.Fatalf("step %d: count %d, following %v, %v; want %d, not following", i, fc.Count, fc.FollowsAuthor, err, s.want)
			}
			ok, err := db.IsFavorited(ctx, s.user.ID, a.ID)
			if err != nil || ok != s.fav {
				t.Fatalf("step %d: IsFavorited = %v, %v", i, ok, err)
			}
		}
	})
}

func TestComments(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		author, reader := mkUser(t, db, "author"), mkUser(t, db, "reader")
		a := mkArticle(t, db, author, "talk")
		b := mkArticle(t, db, author, "other")
		var ids []int64
		for i, who := range []conduit.User{reader, author, reader} {
			ts := now()
			c := conduit.Comment{ArticleID: a.ID, Body: fmt.Sprintf("comment %d", i), CreatedAt: ts, UpdatedAt: ts,
				Author: conduit.Profile{ID: who.ID}}
			if err := db.CreateComment(ctx, &c, roomy); err != nil {
				t.Fatal(err)
			}
			if c.ID == 0 {
				t.Fatal("CreateComment did not set the ID")
			}
			ids = append(ids, c.ID)
		}
		if err := db.Follow(ctx, author.ID, reader.ID); err != nil {
			t.Fatal(err)
		}
		page, err := db.Comments(ctx, author.ID, a.ID, conduit.CommentFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if page.Count != 3 || len(page.Comments) != 3 || page.Next != 0 {
			t.Fatalf("got %d of %d comments (next %d), want 3 of 3", len(page.Comments), page.Count, page.Next)
		}
		for i, c := range page.Comments {
			n := 2 - i // newest first
			if c.ID != ids[n] || c.Body != fmt.Sprintf("comment %d", n) || c.ArticleID != a.ID {
				t.Fatalf("comment %d = %+v", i, c)
			}
			if c.Author.Following != (c.Author.ID == reader.ID) {
				t.Fatalf("comment %d: following=%v", i, c.Author.Following)
			}
			if (c.Author.ID == reader.ID) != (c.Author.Username == "reader") {
				t.Fatalf("comment %d: author %+v", i, c.Author)
			}
		}
		if page, err := db.Comments(ctx, 0, b.ID, conduit.CommentFilter{Limit: 10}); err != nil || page.Comments == nil || len(page.Comments) != 0 || page.Count != 0 {
			t.Fatalf("comments of an article without any: %#v, %v", page, err)
		}

		c, err := db.CommentByID(ctx, a.ID, ids[1])
		if err != nil || c.Body != "comment 1" || c.Author.ID != author.ID {
			t.Fatalf("CommentByID = %+v, %v", c, err)
		}
		_, err = db.CommentByID(ctx, b.ID, ids[1]) // right id, wrong article
		wantNotFound(t, err)

		if err := db.DeleteComment(ctx, ids[1]); err != nil {
			t.Fatal(err)
		}
		wantNotFound(t, db.DeleteComment(ctx, ids[1]))
		page, err = db.Comments(ctx, 0, a.ID, conduit.CommentFilter{Limit: 10})
		if err != nil || page.Count != 2 || len(page.Comments) != 2 || page.Comments[0].ID != ids[2] || page.Comments[1].ID != ids[0] {
			t.Fatalf("after delete: %+v, %v", page, err)
		}
	})
}

func TestTags(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if tags, err := db.Tags(ctx); err != nil || tags == nil || len(tags) != 0 {
			t.Fatalf("tags of an empty database: %#v, %v", tags, err)
		}
		u := mkUser(t, db, "u")
		mkArticle(t, db, u, "p1", "b", "c")
		mkArticle(t, db, u, "p2", "c", "a")
		mkArticle(t, db, u, "p3", "c", "b")
		tags, err := db.Tags(ctx)
		if want := []string{"c", "b", "a"}; err != nil || !slices.Equal(tags, want) {
			t.Fatalf("Tags = %v, %v; want %v (most used first, then by name)", tags, err, want)
		}
	})
}

// Racing inserts of the same username, email or slug: exactly one wins and
// every other gets a DuplicateError (the 422 of the API), never another error.
func TestConcurrentUniqueness(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n = 12
		race := func(t *testing.T, field string, insert func(i int) error) {
			t.Helper()
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = insert(i)
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
					continue
				}
				var dup *conduit.DuplicateError
				if !errors.As(err, &dup) || dup.Field != field {
					t.Fatalf("racing insert failed with %v, want DuplicateError on %s", err, field)
				}
			}
			if wins != 1 {
				t.Fatalf("%d racing inserts won, want exactly 1", wins)
			}
		}
		ts := now()
		race(t, "username", func(i int) error {
			u := conduit.User{Username: []string{"Racer", "racer", "RACER"}[i%3], Email: fmt.Sprintf("r%d@example.com", i),
				PasswordHash: "h", CreatedAt: ts, UpdatedAt: ts}
			return db.CreateUser(ctx, &u)
		})
		race(t, "email", func(i int) error {
			u := conduit.User{Username: fmt.Sprintf("mailer%d", i), Email: "same@example.com", PasswordHash: "h", CreatedAt: ts, UpdatedAt: ts}
			return db.CreateUser(ctx, &u)
		})
		author := mkUser(t, db, "author")
		race(t, "slug", func(i int) error {
			a := conduit.Article{Slug: "hot-topic", Title: "t", Description: "d", Body: "b", Tags: []string{"x"},
				CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: author.ID}}
			return db.CreateArticle(ctx, &a)
		})
		page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Tag: "x", Limit: 50})
		if err != nil || page.Count != 1 {
			t.Fatalf("after slug race: %d articles with the tag, %v", page.Count, err)
		}
	})
}

// Many users favorite and unfavorite one article at once; the stored count
// always equals the number of favorite rows.
func TestConcurrentFavorites(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const users, rounds = 16, 6
		author := mkUser(t, db, "author")
		a := mkArticle(t, db, author, "popular")
		us := make([]conduit.User, users)
		for i := range us {
			us[i] = mkUser(t, db, fmt.Sprintf("fan%d", i))
		}
		var wg sync.WaitGroup
		errc := make(chan error, users)
		for i, u := range us {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					// Favorite twice, unfavorite once or twice; users with an
					// even index end favorited.
					if _, err := db.Favorite(ctx, u.ID, a.ID, a.Author.ID); err != nil {
						errc <- err
						return
					}
					if _, err := db.Favorite(ctx, u.ID, a.ID, a.Author.ID); err != nil {
						errc <- err
						return
					}
					if r == rounds-1 && i%2 == 0 {
						continue
					}
					if _, err := db.Unfavorite(ctx, u.ID, a.ID, a.Author.ID); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatalf("concurrent favorite: %v", err)
		}
		want := 0
		for i, u := range us {
			ok, err := db.IsFavorited(ctx, u.ID, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (i%2 == 0) {
				t.Fatalf("user %d favorited=%v", i, ok)
			}
			if ok {
				want++
			}
		}
		got, err := db.ArticleBySlug(ctx, 0, "popular")
		if err != nil {
			t.Fatal(err)
		}
		if got.FavoritesCount != want {
			t.Fatalf("favorites_count = %d, want %d", got.FavoritesCount, want)
		}
		page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{FavoritedBy: us[0].Username, Limit: 5})
		if err != nil || page.Count != 1 || page.Articles[0].FavoritesCount != want {
			t.Fatalf("list after the race: %+v, %v", page, err)
		}
	})
}

// The rendering of a body is stored for its body and renderer version
// only: never over a changed body or a newer rendering, and an edit
// forgets it.
func TestArticleHTML(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := mkArticle(t, db, mkUser(t, db, "writer"), "rendered")
		stored := func() (string, int) {
			t.Helper()
			got, err := db.ArticleBySlug(ctx, 0, a.Slug)
			if err != nil {
				t.Fatal(err)
			}
			return got.BodyHTML, got.BodyHTMLVersion
		}
		if html, v := stored(); html != "" || v != 0 {
			t.Fatalf("new article has a rendering %q (version %d)", html, v)
		}
		set := func(body, html string, version int) {
			t.Helper()
			if err := db.SetArticleHTML(ctx, a.ID, body, html, version); err != nil {
				t.Fatal(err)
			}
		}
		set("another body", "<p>stale</p>", 1)
		if html, _ := stored(); html != "" {
			t.Fatalf("stored over a different body: %q", html)
		}
		set(a.Body, "<p>v2</p>", 2)
		set(a.Body, "<p>v1</p>", 1)
		set(a.Body, "<p>v2 again</p>", 2)
		if html, v := stored(); html != "<p>v2</p>" || v != 2 {
			t.Fatalf("stored %q (version %d), want the first version 2 rendering", html, v)
		}
		// Lists never carry bodies nor their renderings.
		page, err := db.ListArticles(ctx, 0, conduit.ArticleFilter{Limit: 10})
		if err != nil || len(page.Articles) != 1 || page.Articles[0].BodyHTML != "" || page.Articles[0].Body != "" {
			t.Fatalf("list: %+v, %v", page.Articles, err)
		}
		a.Body = "an edited body"
		if err := db.UpdateArticle(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if html, v := stored(); html != "" || v != 0 {
			t.Fatalf("an edit kept the rendering %q (version %d)", html, v)
		}
		if err := db.SetArticleHTML(ctx, 987654, "x", "<p>x</p>", 1); err != nil {
			t.Fatalf("rendering of a deleted article: %v, want no error (nothing to keep)", err)
		}
	})
}

// Ids name articles and comments in queued jobs and their keys, caches and
// links, so the newest one's id is not given again after it is deleted
// (SQLite hands out the largest rowid plus one; migration 0014).
func TestIDsNeverReused(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := mkUser(t, db, "writer")
		first := mkArticle(t, db, u, "first")
		newest := mkArticle(t, db, u, "newest")
		c1 := conduit.Comment{ArticleID: first.ID, Author: conduit.Profile{ID: u.ID}, Body: "one", CreatedAt: now(), UpdatedAt: now()}
		if err := db.CreateComment(ctx, &c1, roomy); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteComment(ctx, c1.ID); err != nil {
			t.Fatal(err)
		}
		c2 := conduit.Comment{ArticleID: first.ID, Author: conduit.Profile{ID: u.ID}, Body: "two", CreatedAt: now(), UpdatedAt: now()}
		if err := db.CreateComment(ctx, &c2, roomy); err != nil {
			t.Fatal(err)
		}
		if c2.ID <= c1.ID {
			t.Errorf("comment after deleting the newest: id %d, the deleted one had %d", c2.ID, c1.ID)
		}
		if err := db.DeleteArticle(ctx, newest.ID); err != nil {
			t.Fatal(err)
		}
		next := mkArticle(t, db, u, "next")
		if next.ID <= newest.ID {
			t.Errorf("article after deleting the newest: id %d, the deleted one had %d", next.ID, newest.ID)
		}
	})
}

// The copy to PostgreSQL carries the ids SQLite will not give again: the
// first article created there is past a deleted newest one (queued jobs
// copied with the data may name it).
func TestCopyKeepsIDsNeverReused(t *testing.T) {
	t.Parallel()
	pgURL := storetest.NewPostgresDatabase(t)
	lite := storetest.OpenSQLite(t)
	u := mkUser(t, lite, "writer")
	mkArticle(t, lite, u, "kept")
	gone := mkArticle(t, lite, u, "gone")
	if err := lite.DeleteArticle(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	pg, err := store.OpenPostgres(ctx, pgURL, store.PostgresOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CopyToPostgres(ctx, lite, pg, nil); err != nil {
		t.Fatalf("copy: %v", err)
	}
	if next := mkArticle(t, pg, u, "next"); next.ID <= gone.ID {
		t.Errorf("first article on PostgreSQL after the copy: id %d, a deleted one had %d", next.ID, gone.ID)
	}
}

// planOf returns how the database runs q with args, and its steps'
// details one per line.
func planOf(t *testing.T, db *store.DB, q string, args []any) ([]store.PlanNode, string) {
	t.Helper()
	plan, err := db.Plan(ctx, q, args...)
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, p := range plan {
		text = append(text, p.Detail)
	}
	return plan, strings.Join(text, "\n")
}
