package store_test

import (
	"strings"
	"testing"

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
