package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A stage-1 data dir, filled through the Service, is copied with
// `conduit copy` into an empty PostgreSQL database; the same Service on
// PostgreSQL then serves the same users (who can sign in), articles, feeds,
// favorites and comments, and new rows get fresh ids.
func TestCopyStage1ToPostgres(t *testing.T) {
	t.Parallel() // nothing shared: its own databases (and servers)
	ctx := context.Background()
	pgURL := storetest.NewPostgresDatabase(t)
	dataDir := t.TempDir()

	// Stage 1: seed through the domain service.
	lite, err := store.OpenSQLite(ctx, filepath.Join(dataDir, "conduit.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lite.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hasher := auth.Bcrypt{Cost: 4}
	old := conduit.NewService(lite, cache.NewMemory(10), hasher)
	var users []conduit.User
	for i := range 7 {
		u, err := old.Register(ctx, conduit.NewUser{Username: fmt.Sprintf("user%d", i), Email: fmt.Sprintf("user%d@example.com", i), Password: fmt.Sprintf("secret-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	// A name stage 1 accepted and today's rule does not (it is kept, and
	// found by its exact spelling).
	legacy := conduit.User{Username: "Jürgen", Email: "juergen@example.com", PasswordHash: "x", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := lite.CreateUser(ctx, &legacy); err != nil {
		t.Fatal(err)
	}
	bio := "I write about databases"
	if _, err := old.UpdateUser(ctx, users[0].ID, conduit.UserPatch{Bio: &bio}); err != nil {
		t.Fatal(err)
	}
	var articles []conduit.Article
	for i := range 12 {
		author := users[i%3]
		a, err := old.CreateArticle(ctx, author.ID, conduit.NewArticle{
			Title: fmt.Sprintf("Post %d", i), Description: "desc", Body: fmt.Sprintf("body %d", i),
			Tags: []string{"t" + fmt.Sprint(i%4), "all"},
		})
		if err != nil {
			t.Fatal(err)
		}
		articles = append(articles, a)
	}
	// A deleted article leaves a gap in the ids, which must survive too.
	if err := old.DeleteArticle(ctx, users[1].ID, articles[4].Slug); err != nil {
		t.Fatal(err)
	}
	articles = slices.Delete(articles, 4, 5)
	for i, u := range users[3:] {
		for _, followee := range users[:1+i%3] {
			if _, err := old.Follow(ctx, u.ID, followee.Username); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range articles[i:] {
			if _, err := old.Favorite(ctx, u.ID, a.Slug); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := old.AddComment(ctx, u.ID, articles[0].Slug, fmt.Sprintf("comment from %s", u.Username)); err != nil {
			t.Fatal(err)
		}
	}
	type snapshot struct {
		list, feed conduit.ArticlePage
		comments   conduit.CommentPage
		tags       []string
		article    conduit.Article
		profile    conduit.Profile
	}
	snap := func(s *conduit.Service) snapshot {
		t.Helper()
		var sn snapshot
		var err error
		viewer := users[5].ID
		if sn.list, err = s.Articles(ctx, viewer, conduit.ArticleFilter{Limit: 100}); err != nil {
			t.Fatal(err)
		}
		if sn.feed, err = s.Feed(ctx, viewer, conduit.ArticleFilter{Limit: 100}); err != nil {
			t.Fatal(err)
		}
		if sn.comments, err = s.Comments(ctx, viewer, articles[0].Slug, conduit.CommentFilter{}); err != nil {
			t.Fatal(err)
		}
		if sn.tags, err = s.Tags(ctx); err != nil {
			t.Fatal(err)
		}
		if sn.article, err = s.Article(ctx, viewer, articles[3].Slug); err != nil {
			t.Fatal(err)
		}
		if sn.profile, err = s.Profile(ctx, viewer, users[0].Username); err != nil {
			t.Fatal(err)
		}
		return sn
	}
	before := snap(old)
	// Revoked tokens stay revoked on PostgreSQL: a user who signed out
	// everywhere (generation 1), and one single token signed out.
	if err := old.SignOutEverywhere(ctx, users[1].ID); err != nil {
		t.Fatal(err)
	}
	issued := time.Now()
	signedOut := conduit.Token{UserID: users[2].ID, ID: "signed-out", IssuedAt: issued, Expires: issued.Add(time.Hour)}
	if err := old.SignOut(ctx, signedOut); err != nil {
		t.Fatal(err)
	}
	if err := lite.Close(); err != nil {
		t.Fatal(err)
	}

	// The copy.
	var stdout, stderr bytes.Buffer
	args := []string{"copy", "--from-data-dir", dataDir, "--database-url", pgURL}
	if err := run(ctx, args, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("conduit copy: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"users", "articles", "favorites", "comments", "100%"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("progress output lacks %q:\n%s", want, stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "row counts match") {
		t.Errorf("no verification summary:\n%s", stdout.String())
	}

	// Stage 2: the same service on PostgreSQL.
	pg, err := store.OpenPostgres(ctx, pgURL, store.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if err := pg.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}
	svc := conduit.NewService(pg, cache.NewMemory(10), hasher)
	after := snap(svc)

	sameArticles := func(name string, a, b []conduit.Article) {
		t.Helper()
		if len(a) != len(b) {
			t.Fatalf("%s: %d articles before, %d after", name, len(a), len(b))
		}
		for i := range a {
			x, y := a[i], b[i]
			if x.ID != y.ID || x.Slug != y.Slug || x.Title != y.Title || x.Body != y.Body || x.Description != y.Description ||
				!slices.Equal(x.Tags, y.Tags) || x.FavoritesCount != y.FavoritesCount || x.Favorited != y.Favorited ||
				x.Author != y.Author || !sameTime(x.CreatedAt, y.CreatedAt) || !sameTime(x.UpdatedAt, y.UpdatedAt) {
				t.Fatalf("%s[%d]:\nbefore %+v\nafter  %+v", name, i, x, y)
			}
		}
	}
	if before.list.Count != after.list.Count || before.feed.Count != after.feed.Count {
		t.Fatalf("counts before %d/%d, after %d/%d", before.list.Count, before.feed.Count, after.list.Count, after.feed.Count)
	}
	sameArticles("list", before.list.Articles, after.list.Articles)
	sameArticles("feed", before.feed.Articles, after.feed.Articles)
	sameArticles("article", []conduit.Article{before.article}, []conduit.Article{after.article})
	if before.profile != after.profile || after.profile.Bio != bio || !after.profile.Following {
		t.Fatalf("profile before %+v, after %+v", before.profile, after.profile)
	}
	if p, err := svc.Profile(ctx, 0, "Jürgen"); err != nil || p.ID != legacy.ID {
		t.Fatalf("stage-1 name after the copy: %+v, %v", p, err)
	}
	if !slices.Equal(before.tags, after.tags) {
		t.Fatalf("tags before %v, after %v", before.tags, after.tags)
	}
	bc, ac := before.comments, after.comments
	if len(bc.Comments) != len(ac.Comments) || len(ac.Comments) == 0 || bc.Count != ac.Count || ac.Count != len(ac.Comments) {
		t.Fatalf("comments before %d of %d, after %d of %d", len(bc.Comments), bc.Count, len(ac.Comments), ac.Count)
	}
	for i := range bc.Comments {
		x, y := bc.Comments[i], ac.Comments[i]
		if x.ID != y.ID || x.Body != y.Body || x.Author != y.Author || !sameTime(x.CreatedAt, y.CreatedAt) {
			t.Fatalf("comment %d: before %+v, after %+v", i, x, y)
		}
	}

	// Everyone can still sign in with their password.
	for i, u := range users {
		got, err := svc.Login(ctx, conduit.SignIn{Email: u.Email, Password: fmt.Sprintf("secret-%d", i)})
		if err != nil || got.ID != u.ID || got.Username != u.Username {
			t.Fatalf("login of %s after the copy: %+v, %v", u.Username, got, err)
		}
	}
	for _, c := range []struct {
		tok  conduit.Token
		want error
	}{
		{conduit.Token{UserID: users[1].ID, Gen: 0, ID: "a", IssuedAt: issued, Expires: issued.Add(time.Hour)}, conduit.ErrUnauthenticated},
		{conduit.Token{UserID: users[1].ID, Gen: 1, ID: "a", IssuedAt: issued, Expires: issued.Add(time.Hour)}, nil},
		{signedOut, conduit.ErrUnauthenticated},
		{conduit.Token{UserID: users[2].ID, ID: "still-in", IssuedAt: issued, Expires: issued.Add(time.Hour)}, nil},
	} {
		if _, err := svc.Authenticate(ctx, c.tok); !errors.Is(err, c.want) {
			t.Errorf("after the copy, token %+v: %v, want %v", c.tok, err, c.want)
		}
	}
	if _, err := svc.Login(ctx, conduit.SignIn{Email: users[0].Email, Password: "wrong"}); err == nil {
		t.Fatal("a wrong password signs in after the copy")
	}

	// The id sequences continue after the copied ids.
	nu, err := svc.Register(ctx, conduit.NewUser{Username: "newcomer", Email: "new@example.com", Password: "password1"})
	if err != nil {
		t.Fatalf("register after copy: %v", err)
	}
	if nu.ID <= users[len(users)-1].ID {
		t.Fatalf("new user id %d collides with copied ids (last %d)", nu.ID, users[len(users)-1].ID)
	}
	na, err := svc.CreateArticle(ctx, nu.ID, conduit.NewArticle{Title: "Fresh", Description: "d", Body: "b"})
	if err != nil {
		t.Fatalf("create article after copy: %v", err)
	}
	if na.ID <= articles[len(articles)-1].ID {
		t.Fatalf("new article id %d not past the copied ids", na.ID)
	}
	c, err := svc.AddComment(ctx, nu.ID, na.Slug, "first")
	if err != nil || c.ID <= ac.Comments[0].ID {
		t.Fatalf("comment after copy: %+v, %v", c, err)
	}

	// A second copy into the (now non-empty) database is refused.
	stderr.Reset()
	err = run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("copy into a non-empty database: %v", err)
	}
}

// sameTime compares at the microsecond, PostgreSQL's resolution.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}
