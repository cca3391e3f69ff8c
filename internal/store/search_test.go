package store_test

import (
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// A name search matches the prefix in any ASCII case, in the order of the
// lower-cased names, with the viewer's following flag, and on SQLite reads
// a range of the username key's index rather than every user.
func TestUsersByPrefix(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		viewer := mkUser(t, db, "viewer")
		for _, name := range []string{"Anna", "andy", "ANT", "bob", "an", "Banana"} {
			mkUser(t, db, name)
		}
		anna := mkUser(t, db, "annabel")
		if err := db.Follow(ctx, viewer.ID, anna.ID); err != nil {
			t.Fatal(err)
		}
		got, err := db.UsersByPrefix(ctx, viewer.ID, "aN", 4)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range got {
			names = append(names, p.Username)
			if p.Following != (p.ID == anna.ID) {
				t.Errorf("%s: following %v", p.Username, p.Following)
			}
		}
		if want := "an andy Anna annabel"; strings.Join(names, " ") != want {
			t.Errorf("prefix aN, limit 4: %v, want %s", names, want)
		}

		if db.Dialect() != "sqlite" {
			return // PostgreSQL's plan for a handful of rows is a scan; its index is migration 0009's
		}
		q, args := db.UsersByPrefixQuery(viewer.ID, "an", 20)
		_, all := planOf(t, db, q, args)
		if !strings.Contains(all, "USING INDEX users_username_key (username_key>? AND username_key<?)") || strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("the search does not read a range of users_username_key in order:\n%s", all)
		}
	})
}

// A search ranks the newest matches by the words in the title (10 each)
// over those in the description (4 each), a word counted once per field,
// newest first among equals; the body only matches; every word is
// required, stemmed. SQLite ranks
// searches of up to two words with column filters and longer ones with
// highlight(): both orders are checked, on articles whose words never
// repeat in a field, where the two agree.
func TestSearchArticlesRanking(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		author := mkUser(t, db, "author")
		slugs := map[int64]string{}
		arts := map[string]conduit.Article{}
		for _, a := range []struct{ slug, title, desc, body string }{
			// oldest first
			{"both-in-title", "River and stone", "a walk", "lamps lit"},
			{"body-only", "A walk", "at dusk", "the river, the stone and a lamp"},
			{"title-and-description", "Rivers", "of stone", "a lamp"},
			{"description-only", "Evening", "river stones", "lamp"},
			{"stone-in-title", "Stone", "old walls", "a river and a lamp"},
			{"river-in-title", "River", "at noon", "no stone here, a lamp"},
			{"one-word", "Stones", "and sand", "the shore at night lamp"},
			{"lantern-thrice-in-body", "Harbour", "at dawn", "lantern, lantern and lantern"},
			{"lantern-twice-in-title", "Lantern, lantern", "boats", "calm water"},
			{"lantern-in-body", "Quay", "at dusk", "a lantern"},
			{"lantern-in-title", "Lantern", "boats", "calm water"},
		} {
			ts := now()
			art := conduit.Article{Slug: a.slug, Title: a.title, Description: a.desc, Body: a.body,
				CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: author.ID}}
			if err := db.CreateArticle(ctx, &art); err != nil {
				t.Fatal(err)
			}
			slugs[art.ID] = a.slug
			arts[a.slug] = art
		}
		search := func(text string, limit, offset int) (string, int) {
			t.Helper()
			q, err := conduit.ParseSearch(text, limit, offset)
			if err != nil {
				t.Fatal(err)
			}
			page, err := db.SearchArticles(ctx, 0, q)
			if err != nil {
				t.Fatalf("%q: %v", text, err)
			}
			var got []string
			for _, a := range page.Articles {
				got = append(got, slugs[a.ID])
			}
			return strings.Join(got, " "), page.Count
		}
		for _, tt := range []struct {
			text, want string
		}{
			// 10 10 10 4 0 0: newest first among equals.
			{"river", "river-in-title title-and-description both-in-title description-only stone-in-title body-only"},
			// 20 14 10 10 8 0.
			{"river stone", "both-in-title title-and-description river-in-title stone-in-title description-only body-only"},
			// The same with a word every match has in its body: the
			// ranking by highlight() (three words) agrees.
			{"lamp river stone", "both-in-title title-and-description river-in-title stone-in-title description-only body-only"},
			{"stone stone", "one-word stone-in-title both-in-title description-only title-and-description river-in-title body-only"},
			// A word counts once per field, and the body only matches:
			// 10 10 0 0, newest first among equals, however often the
			// word occurs (PostgreSQL's ts_rank once counted each
			// occurrence, the body's too).
			{"lantern", "lantern-in-title lantern-twice-in-title lantern-in-body lantern-thrice-in-body"},
			{"lantern boats", "lantern-in-title lantern-twice-in-title"},
			{"zebra", ""},
			{"river zebra", ""},
			{"river stone zebra", ""},
		} {
			want := strings.Count(tt.want, " ") + 1
			if tt.want == "" {
				want = 0
			}
			if got, n := search(tt.text, 20, 0); got != tt.want || n != want {
				t.Errorf("%q: %d %q\nwant %d %q", tt.text, n, got, want, tt.want)
			}
		}
		if got, n := search("river stone", 2, 2); got != "river-in-title stone-in-title" || n != 6 {
			t.Errorf("river stone, limit 2 offset 2: %d %q", n, got)
		}
		if got, n := search("river stone", 2, 6); got != "" || n != 6 {
			t.Errorf("river stone past the matches: %d %q", n, got)
		}

		// The index follows an edit of the title and body, and a delete
		// (on PostgreSQL a trigger keeps article_search, migration 0019).
		edited := arts["lantern-in-body"]
		edited.Title, edited.Body = "Lantern quay", "a torch"
		if err := db.UpdateArticle(ctx, &edited); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteArticle(ctx, arts["lantern-in-title"].ID); err != nil {
			t.Fatal(err)
		}
		if got, n := search("lantern", 20, 0); got != "lantern-in-body lantern-twice-in-title lantern-thrice-in-body" || n != 3 {
			t.Errorf("lantern after an edit and a delete: %d %q", n, got)
		}
		if got, n := search("torch", 20, 0); got != "lantern-in-body" || n != 1 {
			t.Errorf("torch, the edited body's word: %d %q", n, got)
		}
	})
}
