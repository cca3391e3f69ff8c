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
