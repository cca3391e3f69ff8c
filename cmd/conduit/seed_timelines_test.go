package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
)

// conduit seed builds every home timeline after loading: a seeded user's
// feed is read from the timeline and equals the feed read from the follows.
func TestSeedBuildsTimelines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"seed", "--data-dir", dir, "--scale", "0.002", "--quiet", "--bcrypt-cost", "4",
		"--fanout-max-followers", "20", "--timeline-cap", "30"}
	if err := run(ctx, args, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("conduit seed: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "timelines: 2000 users") {
		t.Errorf("no timelines summary:\n%s", stdout.String())
	}
	db, err := store.OpenSQLite(ctx, filepath.Join(dir, "conduit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if missing, err := db.UsersWithoutTimeline(ctx, 0, 10); err != nil || len(missing) != 0 {
		t.Fatalf("users without timeline after seeding: %v, %v", missing, err)
	}
	answered := 0
	for id := int64(1); id <= 2000; id += 37 {
		f := conduit.ArticleFilter{Limit: 10}
		want, err := db.FeedOnRead(ctx, id, f)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := db.TimelineFeed(ctx, id, f)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue // a page below the horizon
		}
		answered++
		if got.Count != want.Count || len(got.Articles) != len(want.Articles) {
			t.Fatalf("user %d: timeline %d articles (count %d), on read %d (count %d)", id, len(got.Articles), got.Count, len(want.Articles), want.Count)
		}
		for i := range got.Articles {
			if got.Articles[i].ID != want.Articles[i].ID {
				t.Fatalf("user %d: article %d differs", id, i)
			}
		}
	}
	if answered == 0 {
		t.Error("no seeded user's feed was read from a timeline")
	}
}
