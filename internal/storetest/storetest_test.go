package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/conduit"
)

func TestMain(m *testing.M) { Main(m) }

// Every backend hands out databases that are migrated and start empty,
// whatever an earlier test wrote to its own.
func TestCopiesAreMigratedAndIndependent(t *testing.T) {
	t.Parallel()
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			first := b.Open(t)
			if err := first.CheckSchema(ctx); err != nil {
				t.Fatal(err)
			}
			if err := first.CreateUser(ctx, &conduit.User{Username: "ann", Email: "ann@example.com", PasswordHash: "x"}); err != nil {
				t.Fatal(err)
			}
			second := b.Open(t)
			if err := second.CheckSchema(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := second.UserByEmail(ctx, "ann@example.com"); !errors.Is(err, conduit.ErrNotFound) {
				t.Fatalf("a fresh database has the user written to another one (err %v)", err)
			}
		})
	}
}

// The databases of a run whose holder session is gone are dropped; those
// of a live run are not.
func TestStaleRunsAreDropped(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: each DROP DATABASE waits for a checkpoint of the shared server")
	}
	r := currentRun(t)
	if err := r.migrateTemplate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dead, live := runPrefix+"0000000000000000", runPrefix+"1111111111111111"
	cfg, err := pgx.ParseConfig(r.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = live
	holder, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	for _, db := range []string{dead + "_1", live + "_1"} {
		if err := r.exec(ctx, `CREATE DATABASE `+db); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.dropNow(db) })
	}

	r.dropOrphans(ctx)
	dbs, err := r.strings(ctx, `SELECT datname FROM pg_database`)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(dbs, dead+"_1") {
		t.Errorf("%s_1 of a run without a holder was not dropped", dead)
	}
	for _, db := range []string{live + "_1", r.template()} {
		if !slices.Contains(dbs, db) {
			t.Errorf("%s of a live run was dropped", db)
		}
	}
}

// A copy a test is done with is emptied and handed to the next test
// (reuse.go) only when it is then what a fresh copy is: migrated, empty,
// its sequences starting again; one whose schema a test changed is
// dropped instead. Not parallel: the count of reused copies is the
// package's.
func TestCopiesAreReusedOnlyWhenLikeNew(t *testing.T) {
	r := currentRun(t)
	if !r.background {
		t.Fatal("the package's tests do not run under Main")
	}
	ctx := context.Background()
	exec := func(t *testing.T, url, sql string) {
		t.Helper()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	settle := func() int64 { r.recycling.Wait(); return r.reused.Load() }

	before := settle()
	t.Run("schema changed", func(t *testing.T) {
		exec(t, NewMigratedPostgresDatabase(t), `CREATE INDEX users_bio ON users (bio)`)
	})
	if n := settle(); n != before {
		t.Fatalf("a copy with an index of its own was reused (%d reused, %d before)", n, before)
	}
	t.Run("rows written", func(t *testing.T) {
		db := OpenPostgres(t)
		for _, name := range []string{"ann", "bob"} {
			if err := db.CreateUser(ctx, &conduit.User{Username: name, Email: name + "@example.com", PasswordHash: "x"}); err != nil {
				t.Fatal(err)
			}
		}
	})
	if n := settle(); n != before+1 {
		t.Fatalf("a copy with rows written was not reused (%d reused, %d before)", n, before)
	}
	if len(r.free) == 0 {
		t.Fatal("no reused copy is ready")
	}
	db := OpenPostgres(t)
	if len(r.free) != 0 {
		t.Fatal("the reused copy was not handed out")
	}
	if err := db.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}
	counts, err := db.TableCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range counts {
		if n != 0 {
			t.Errorf("reused copy: %s has %d rows", table, n)
		}
	}
	u := conduit.User{Username: "cy", Email: "cy@example.com", PasswordHash: "x"}
	if err := db.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if got, err := db.UserByEmail(ctx, "cy@example.com"); err != nil || got.ID != 1 {
		t.Errorf("first user of a reused copy: id %d, %v; want id 1 as in a fresh copy", got.ID, err)
	}
}
