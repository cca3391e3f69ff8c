package seed_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"hash"
	"slices"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// memSink keeps a digest of every row and the statistics the tests check.
type memSink struct {
	h         hash.Hash
	counts    map[string]int64
	inDegree  map[int64]int
	favCount  map[int64]int // favorites rows per article
	favCol    map[int64]int // favorites_count column per article
	articleBy map[int64]int // articles per author
	tagUse    map[string]int
	finished  bool
}

func newMemSink() *memSink {
	return &memSink{h: sha256.New(), counts: map[string]int64{}, inDegree: map[int64]int{},
		favCount: map[int64]int{}, favCol: map[int64]int{}, articleBy: map[int64]int{}, tagUse: map[string]int{}}
}

func (m *memSink) put(vs ...any) {
	for _, v := range vs {
		switch v := v.(type) {
		case int64:
			binary.Write(m.h, binary.LittleEndian, v)
		case int:
			binary.Write(m.h, binary.LittleEndian, int64(v))
		case string:
			m.h.Write([]byte(v))
			m.h.Write([]byte{0})
		case time.Time:
			binary.Write(m.h, binary.LittleEndian, v.UnixNano())
		}
	}
}

// record counts a batch of rows of table and hands each row to each.
func record[R any](m *memSink, table string, rows []R, each func(R)) error {
	m.counts[table] += int64(len(rows))
	for _, r := range rows {
		each(r)
	}
	return nil
}

func (m *memSink) Users(_ context.Context, rows []store.UserRow) error {
	return record(m, "users", rows, func(r store.UserRow) {
		m.put(r.ID, r.Username, r.Email, r.Bio, r.Image, r.CreatedAt) // not the salted hash
	})
}

func (m *memSink) Follows(_ context.Context, rows []store.FollowRow) error {
	return record(m, "follows", rows, func(r store.FollowRow) {
		m.put(r.FollowerID, r.FolloweeID, r.CreatedAt)
		m.inDegree[r.FolloweeID]++
	})
}

func (m *memSink) Articles(_ context.Context, rows []store.ArticleRow) error {
	return record(m, "articles", rows, func(r store.ArticleRow) {
		m.put(r.ID, r.Slug, r.AuthorID, r.Title, r.Description, r.Body, r.FavoritesCount, r.CreatedAt)
		m.favCol[r.ID] = r.FavoritesCount
		m.articleBy[r.AuthorID]++
	})
}

func (m *memSink) ArticleTags(_ context.Context, rows []store.ArticleTagRow) error {
	return record(m, "article_tags", rows, func(r store.ArticleTagRow) {
		m.put(r.ArticleID, r.Tag)
		m.tagUse[r.Tag]++
	})
}

func (m *memSink) Favorites(_ context.Context, rows []store.FavoriteRow) error {
	return record(m, "favorites", rows, func(r store.FavoriteRow) {
		m.put(r.UserID, r.ArticleID, r.CreatedAt)
		m.favCount[r.ArticleID]++
	})
}

func (m *memSink) Comments(_ context.Context, rows []store.CommentRow) error {
	return record(m, "comments", rows, func(r store.CommentRow) {
		m.put(r.ID, r.ArticleID, r.AuthorID, r.Body, r.CreatedAt)
	})
}

func (m *memSink) Finish(context.Context, func(string)) error {
	m.finished = true
	return nil
}

func run(t *testing.T, sink seed.Sink, s uint64, scale float64) seed.Result {
	t.Helper()
	res, err := seed.Run(context.Background(), sink, seed.Options{Seed: s, Scale: scale, PasswordHash: "x", Batch: 1000})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	return res
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, b, c := newMemSink(), newMemSink(), newMemSink()
	run(t, a, 7, 0.002)
	run(t, b, 7, 0.002)
	run(t, c, 8, 0.002)
	if !slices.Equal(a.h.Sum(nil), b.h.Sum(nil)) {
		t.Error("the same seed gave different data")
	}
	if slices.Equal(a.h.Sum(nil), c.h.Sum(nil)) {
		t.Error("different seeds gave the same data")
	}
}

func TestPlanAndShape(t *testing.T) {
	t.Parallel()
	m := newMemSink()
	res := run(t, m, 1, 0.01)
	p := res.Plan
	want := seed.Plan{Users: 10_000, Follows: 200_000, Articles: 20_000, Favorites: 100_000, Comments: 20_000, Tags: 1000}
	if p.Users != want.Users || p.Follows != want.Follows || p.Articles != want.Articles ||
		p.Favorites != want.Favorites || p.Comments != want.Comments || p.Tags != want.Tags {
		t.Errorf("plan = %+v, want the scaled sizes %+v", p, want)
	}
	if p.ArticleTags < p.Articles || p.ArticleTags > 4*p.Articles {
		t.Errorf("article_tags = %d, want 1 to 4 per article", p.ArticleTags)
	}
	for table, n := range p.Tables() {
		if m.counts[table] != n {
			t.Errorf("%s: wrote %d rows, plan says %d", table, m.counts[table], n)
		}
	}
	if !m.finished {
		t.Error("sink was not finished")
	}
	for id, n := range m.favCount {
		if m.favCol[id] != n {
			t.Fatalf("article %d: favorites_count %d, %d favorite rows", id, m.favCol[id], n)
		}
	}
	for id, c := range m.favCol {
		if c != m.favCount[id] {
			t.Fatalf("article %d: favorites_count %d, %d favorite rows", id, c, m.favCount[id])
		}
	}

	// Skew: the hundred most followed accounts hold a large share, the
	// most followed has far more than the mean, most users write little.
	deg := make([]int, 0, len(m.inDegree))
	for _, d := range m.inDegree {
		deg = append(deg, d)
	}
	slices.Sort(deg)
	slices.Reverse(deg)
	mean := float64(p.Follows) / float64(p.Users)
	if float64(deg[0]) < 50*mean {
		t.Errorf("top in-degree %d, mean %.1f: not a power law", deg[0], mean)
	}
	top100 := 0
	for _, d := range deg[:100] {
		top100 += d
	}
	if share := float64(top100) / float64(p.Follows); share < 0.10 || share > 0.30 {
		t.Errorf("top 100 accounts have %.0f%% of follows, want 10-30%%", 100*share)
	}
	by := make([]int, 0, len(m.articleBy))
	for _, n := range m.articleBy {
		by = append(by, n)
	}
	slices.Sort(by)
	slices.Reverse(by)
	topShare := 0
	for _, n := range by[:p.Users/100] {
		topShare += n
	}
	if share := float64(topShare) / float64(p.Articles); share < 0.15 {
		t.Errorf("the top 1%% of authors wrote %.0f%% of articles; prolific authors should write many", 100*share)
	}
	if median := by[len(by)/2]; median > 2 {
		t.Errorf("median author wrote %d articles; most should write few", median)
	}
	if len(m.tagUse) < 500 {
		t.Errorf("only %d distinct tags used", len(m.tagUse))
	}
}

func TestSeedStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) { seedAndCheck(t, db) })
}

// TestSeedPostgres seeds a fresh PostgreSQL database through the bulk
// path that conduit seed uses, with conduit seed's statement timeout.
func TestSeedPostgres(t *testing.T) {
	t.Parallel()
	u := storetest.NewMigratedPostgresDatabase(t)
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, u, store.PostgresOptions{StatementTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seedAndCheck(t, db, func() {
		// The load ends with VACUUM, so the visibility map is set and the
		// counts' index-only scans do not fetch heap rows.
		check, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		defer check.Close()
		for _, table := range []string{"articles", "follows", "favorites", "article_tags"} {
			var pages, visible int64
			var vacuumed bool
			if err := check.QueryRowContext(ctx, `
				SELECT c.relpages, c.relallvisible, s.last_vacuum IS NOT NULL
				FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
				WHERE c.relname = $1`, table).Scan(&pages, &visible, &vacuumed); err != nil {
				t.Fatal(err)
			}
			if !vacuumed || pages == 0 || visible < pages*9/10 {
				t.Errorf("%s after seeding: vacuumed %v, %d of %d pages all-visible", table, vacuumed, visible, pages)
			}
		}
	})
}

// checkScale is the scale seedAndCheck seeds at: under -short a third,
// which runs the same load, finishing and checks (three tests seed, and
// the seeding was a third of a -short run's time).
func checkScale() float64 {
	if testing.Short() {
		return 0.001
	}
	return 0.003
}

// seedAndCheck seeds an empty, migrated database and checks it: counts
// against the plan, counters and references, and the app working on it.
// afterLoad, if given, runs right after the load.
func seedAndCheck(t *testing.T, db *store.DB, afterLoad ...func()) {
	{
		ctx := context.Background()
		hash, err := auth.Bcrypt{Cost: 4}.Hash("password")
		if err != nil {
			t.Fatal(err)
		}
		loader, err := db.BulkLoad(ctx)
		if err != nil {
			t.Fatalf("bulk load: %v", err)
		}
		res, err := seed.Run(ctx, loader, seed.Options{Seed: 3, Scale: checkScale(), PasswordHash: hash})
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
		if err := loader.Close(); err != nil {
			t.Fatalf("close loader: %v", err)
		}
		for _, f := range afterLoad {
			f()
		}
		counts, err := db.TableCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for table, n := range res.Plan.Tables() {
			if counts[table] != n {
				t.Errorf("%s has %d rows, plan says %d", table, counts[table], n)
			}
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Error(err)
		}
		if _, err := db.BulkLoad(ctx); !errors.Is(err, store.ErrNotEmpty) {
			t.Errorf("second bulk load: err = %v, want ErrNotEmpty", err)
		}

		// The app works on the seeded data: sign in, lists, counters.
		svc := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
		u, err := svc.Login(ctx, conduit.SignIn{Email: seed.Email(42), Password: "password"})
		if err != nil || u.Username != seed.Username(42) {
			t.Fatalf("login as seeded user: %+v, %v", u, err)
		}
		page, err := svc.Articles(ctx, u.ID, conduit.ArticleFilter{})
		if err != nil || int64(page.Count) != res.Plan.Articles || len(page.Articles) != conduit.DefaultLimit {
			t.Fatalf("articles: count %d, %d on page, err %v", page.Count, len(page.Articles), err)
		}
		a := page.Articles[0]
		if int64(a.ID) != res.Plan.Articles || len(a.Tags) == 0 {
			t.Errorf("newest article: id %d, tags %v", a.ID, a.Tags)
		}
		fav, err := svc.Favorite(ctx, u.ID, a.Slug)
		if err != nil {
			t.Fatal(err)
		}
		if !fav.Favorited || fav.FavoritesCount < 1 {
			t.Errorf("favorite: %+v", fav)
		}
		if err := db.CheckIntegrity(ctx); err != nil {
			t.Errorf("after a favorite through the service: %v", err)
		}
		tags, err := svc.Tags(ctx)
		if err != nil || len(tags) != 100 {
			t.Errorf("tags: %d, %v", len(tags), err)
		}
		if _, err := svc.Feed(ctx, u.ID, conduit.ArticleFilter{Limit: 20}); err != nil {
			t.Errorf("feed: %v", err)
		}
		// New rows get ids after the seeded ones.
		art, err := svc.CreateArticle(ctx, u.ID, conduit.NewArticle{Title: "After seeding", Description: "d", Body: "b"})
		if err != nil || art.ID != res.Plan.Articles+1 {
			t.Errorf("create article after seeding: id %d, %v", art.ID, err)
		}
		if _, err := svc.Register(ctx, conduit.NewUser{Username: "newcomer", Email: "newcomer@example.com", Password: "password"}); err != nil {
			t.Errorf("register after seeding: %v", err)
		}
		if _, err := svc.AddComment(ctx, u.ID, a.Slug, "hello"); err != nil {
			t.Errorf("comment after seeding: %v", err)
		}
		if err := db.ResetData(ctx); err != nil {
			t.Fatal(err)
		}
		if empty, err := db.IsEmpty(ctx); err != nil || !empty {
			t.Errorf("after reset: empty=%v, %v", empty, err)
		}
	}
}
