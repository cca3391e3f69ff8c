package store_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// versionBeforeKeys is the last schema version without users.username_key.
const versionBeforeKeys = 4

// legacyUser is a row as stage 1 (or a database under another collation)
// may hold it, and what migration 0006 makes of it.
type legacyUser struct {
	id   int64
	name string
	// after is the name after the migration ("" means unchanged).
	after string
	// also are other spellings that find this user after the migration.
	also []string
}

// legacyUsers are names stage 1 accepted (any Unicode letter or digit,
// '_', '-', '.'; unique by SQLite's ASCII-only lower()), plus two that
// differ in ASCII case only, which a database whose old index was built
// under another collation could hold.
var legacyUsers = []legacyUser{
	{id: 1, name: "admin", also: []string{"ADMIN", "Admin"}},
	{id: 2, name: "adm\u0130n"},  // İ: Go's ToLower gives "admin"
	{id: 3, name: "\u212Aelvin"}, // the Kelvin sign: Go's ToLower gives "kelvin"
	{id: 4, name: "kelvin", also: []string{"KELVIN"}},
	{id: 5, name: "Élise"},
	{id: 6, name: "élise"},
	{id: 7, name: "e\u0301lise"}, // "élise" decomposed (NFD)
	{id: 8, name: "Jürgen"},
	{id: 9, name: ".", after: ".~9"},
	{id: 10, name: "..", after: "..~10"},
	{id: 11, name: "..."},
	{id: 12, name: "Bob", also: []string{"bob", "BOB"}},
	{id: 13, name: "bob", after: "bob~13"},
	{id: 14, name: "ALICE.smith-2", also: []string{"alice.SMITH-2"}},
}

// openUnmigrated runs f once per backend on an empty database.
func eachUnmigrated(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "conduit.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		f(t, db)
	})
	if storetest.PostgresURL(t) == "" {
		return
	}
	t.Run("postgres", func(t *testing.T) {
		db, err := store.OpenPostgres(ctx, storetest.NewPostgresDatabase(t), store.PostgresOptions{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		f(t, db)
	})
}

// fillLegacy builds a database at the version before username keys and
// fills it with legacyUsers. The old unique index on lower(username) is
// made non-unique first: it differs between the databases (SQLite's lower()
// folds ASCII only, PostgreSQL's follows the locale), and the migration
// must cope with whatever either let in.
func fillLegacy(t *testing.T, db *store.DB) {
	t.Helper()
	if err := db.MigrateTo(ctx, versionBeforeKeys); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX users_username_key`, `CREATE INDEX users_username_key ON users (lower(username))`} {
		if err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	ts := now()
	for _, u := range legacyUsers {
		if err := db.Exec(ctx, `INSERT INTO users (id, username, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, 'x', ?, ?)`,
			u.id, u.name, fmt.Sprintf("user%d@example.com", u.id), ts, ts); err != nil {
			t.Fatalf("insert %q: %v", u.name, err)
		}
	}
	if db.Dialect() == "postgres" { // ids were given: move the identity past them
		if err := db.Exec(ctx, `SELECT setval(pg_get_serial_sequence('users', 'id'), 1000)`); err != nil {
			t.Fatal(err)
		}
	}
}

// checkLegacy checks what the migration made of legacyUsers: every user is
// found by its (new) exact name and the spellings in also, by nothing
// else, and the stored key is what Go computes.
func checkLegacy(t *testing.T, db *store.DB) {
	t.Helper()
	keys, err := db.UsernameKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range legacyUsers {
		want := u.name
		if u.after != "" {
			want = u.after
		}
		got := keys[u.id]
		if got[0] != want || got[1] != conduit.UsernameKey(want) {
			t.Errorf("user %d (%q): name %q key %q, want name %q key %q", u.id, u.name, got[0], got[1], want, conduit.UsernameKey(want))
		}
		for _, name := range append([]string{want}, u.also...) {
			found, err := db.UserByUsername(ctx, name)
			if err != nil || found.ID != u.id {
				t.Errorf("UserByUsername(%q) = user %d, %v; want user %d", name, found.ID, err, u.id)
			}
		}
		if u.after != "" {
			if found, err := db.UserByUsername(ctx, u.name); err == nil && found.ID == u.id {
				t.Errorf("renamed user %d is still found by its old name %q", u.id, u.name)
			}
		}
	}
	// Names that fold to another user's under Go's or a database's Unicode
	// rules find nobody: only ASCII case is ignored.
	for _, name := range []string{"ADMİN", "adm\u0131n", "\u212AELVIN", "ÉLISE", "jürgen", "JÜRGEN", "."} {
		if found, err := db.UserByUsername(ctx, name); !errors.Is(err, conduit.ErrNotFound) {
			t.Errorf("UserByUsername(%q) = user %d (%q), %v; want not found", name, found.ID, found.Username, err)
		}
	}
}

// Migration 0006 keys every user stage 1 accepted, on both databases,
// renaming only the names no URL reaches and later duplicates; afterwards
// the database refuses a second user with the same key.
func TestUsernameKeyMigration(t *testing.T) {
	t.Parallel()
	eachUnmigrated(t, func(t *testing.T, db *store.DB) {
		fillLegacy(t, db)
		if n, err := db.Migrate(ctx); err != nil || n == 0 {
			t.Fatalf("migrate: %d applied, %v", n, err)
		}
		checkLegacy(t, db)

		ts := now()
		for _, name := range []string{"ADMIN", "Kelvin", "bob", "Élise", "..."} {
			u := conduit.User{Username: name, Email: "new-" + name + "@example.com", PasswordHash: "x", CreatedAt: ts, UpdatedAt: ts}
			wantDuplicate(t, db.CreateUser(ctx, &u), "username")
		}
		// A name that only Unicode folding would merge is another user's.
		u := conduit.User{Username: "ÉLISE", Email: "elise-upper@example.com", PasswordHash: "x", CreatedAt: ts, UpdatedAt: ts}
		if err := db.CreateUser(ctx, &u); err != nil {
			t.Fatalf("create %q: %v", u.Username, err)
		}
		if got, err := db.UserByUsername(ctx, "Élise"); err != nil || got.ID != 5 {
			t.Fatalf("Élise after ÉLISE was added: %d, %v", got.ID, err)
		}
	})
}

// The same key in Go and in each database's migration SQL, for names of
// every kind.
func TestUsernameKeySQLMatchesGo(t *testing.T) {
	names := []string{
		"a", "Z", "0", "_a", "a-", "a.b", "A_B-C.D", strings.Repeat("X", 40), strings.Repeat("X", 41),
		"_", "-", ".", "..", "...", "a b", "a/b", "a~b", "İ", "ı", "I", "i", "\u212A", "ß", "SS",
		"ÀÉÎ", "straße", "STRASSE", "日本", "x\u0301", "ﬁ", "Ǆ", "ǅ", "ǆ", "\u00a0a",
	}
	eachUnmigrated(t, func(t *testing.T, db *store.DB) {
		if err := db.MigrateTo(ctx, versionBeforeKeys); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(ctx, `DROP INDEX users_username_key`); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(ctx, `CREATE INDEX users_username_key ON users (lower(username))`); err != nil {
			t.Fatal(err)
		}
		ts := now()
		for i, name := range names {
			if err := db.Exec(ctx, `INSERT INTO users (id, username, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, 'x', ?, ?)`,
				i+1, name, fmt.Sprintf("u%d@example.com", i), ts, ts); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		keys, err := db.UsernameKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var renamed []string
		for i, name := range names {
			got := keys[int64(i+1)]
			if got[0] != name {
				renamed = append(renamed, name)
				continue
			}
			if want := conduit.UsernameKey(name); got[1] != want {
				t.Errorf("%q: key %q in the database, %q in Go", name, got[1], want)
			}
		}
		// Only the unreachable names and the later of the two names
		// that differ in ASCII case only ("I", "i") were renamed.
		if want := []string{".", "..", "i"}; !slices.Equal(renamed, want) {
			t.Errorf("renamed %q, want %q", renamed, want)
		}
	})
}

// Everything stage 1 accepted copies to PostgreSQL: the names of
// legacyUsers (keyed and renamed by migration 0006 on SQLite, then found
// the same way on PostgreSQL), and text that is not valid UTF-8 or holds
// NUL, which stage 1 stored in titles, bodies, bios and tags: it arrives
// with U+FFFD in place of the bad bytes, and two tags of one article that
// become equal so are copied once.
func TestCopyStage1Data(t *testing.T) {
	t.Parallel()
	pgURL := storetest.NewPostgresDatabase(t)
	lite, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "conduit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	fillLegacy(t, lite)
	ts := now()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE users SET bio = ?, image = ? WHERE id = 1`, []any{"bio \xc0\xaf", "https://img.example/\xff.png"}},
		{`INSERT INTO articles (id, slug, author_id, title, description, body, favorites_count, created_at, updated_at)
		  VALUES (1, 't', 1, ?, ?, ?, 0, ?, ?)`, []any{"t\xff", "d\xed\xa0\x80", "b\x00ody", ts, ts}},
		{`INSERT INTO article_tags (article_id, tag) VALUES (1, ?), (1, ?), (1, ?), (1, 'b'), (1, ?)`,
			[]any{"a\xfe", "a\xff", "a\xfeb", "a\uFFFD"}},
		{`INSERT INTO comments (id, article_id, author_id, body, created_at, updated_at) VALUES (1, 1, 5, ?, ?, ?)`,
			[]any{"c\x00\xff", ts, ts}},
	} {
		if err := lite.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if _, err := lite.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	pg, err := store.OpenPostgres(ctx, pgURL, store.PostgresOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	counts, err := store.CopyToPostgres(ctx, lite, pg, nil)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	want := map[string][3]int64{ // source, repaired, merged
		"users": {int64(len(legacyUsers)), 2, 0}, "articles": {1, 3, 0}, "article_tags": {5, 3, 2}, "comments": {1, 1, 0},
		"article_slugs": {1, 0, 0}, // migration 0008 records the article's slug
	}
	for _, c := range counts {
		w := want[c.Table]
		if c.Source != w[0] || c.Repaired != w[1] || c.Merged != w[2] || c.Target != c.Source-c.Merged {
			t.Errorf("%s: %+v, want source %d, repaired %d, merged %d", c.Table, c, w[0], w[1], w[2])
		}
	}

	checkLegacy(t, pg)
	u, err := pg.UserByID(ctx, 1)
	if err != nil || u.Bio != "bio \uFFFD" || u.Image != "https://img.example/\uFFFD.png" {
		t.Errorf("user 1 after the copy: %+v, %v", u, err)
	}
	a, err := pg.ArticleBySlug(ctx, 0, "t")
	if err != nil {
		t.Fatal(err)
	}
	if a.Title != "t\uFFFD" || a.Description != "d\uFFFD" || a.Body != "b\uFFFDody" || !slices.Equal(a.Tags, []string{"a\uFFFD", "a\uFFFDb", "b"}) {
		t.Errorf("article after the copy: %q %q %q %q", a.Title, a.Description, a.Body, a.Tags)
	}
	page, err := pg.Comments(ctx, 0, a.ID, conduit.CommentFilter{Limit: 10})
	if cs := page.Comments; err != nil || len(cs) != 1 || cs[0].Body != "c\uFFFD\uFFFD" {
		t.Errorf("comments after the copy: %+v, %v", cs, err)
	}
	tags, err := pg.Tags(ctx)
	if err != nil || len(tags) != 3 {
		t.Errorf("tag counts after the copy: %q, %v", tags, err)
	}
}
