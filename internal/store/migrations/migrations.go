// Package migrations holds the numbered schema migrations of each database
// dialect and applies them, each in its own transaction.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// List returns the migrations of dialect ("sqlite" or "postgres") in order.
// Both dialects share one version history: file NNNN exists in both.
func List(dialect string) ([]Migration, error) {
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, fmt.Errorf("migrations for %q: %w", dialect, err)
	}
	var ms []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		b, err := files.ReadFile(path.Join(dialect, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Latest is the version the code expects.
func Latest(dialect string) (int, error) {
	ms, err := List(dialect)
	if err != nil || len(ms) == 0 {
		return 0, err
	}
	return ms[len(ms)-1].Version, nil
}

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at TEXT NOT NULL
)`

// Current returns the highest applied version, 0 for an empty database.
func Current(ctx context.Context, db *sql.DB) (int, error) {
	if _, err := db.ExecContext(ctx, createTable); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// Apply runs every migration newer than the database's version, each in a
// transaction of its own, and returns how many it applied. placeholder
// renders bind parameter n in the dialect ("?" or "$1"). lock, when not nil,
// runs first inside every transaction to keep concurrent migrators apart.
func Apply(ctx context.Context, db *sql.DB, dialect string, placeholder func(n int) string, lock string) (int, error) {
	ms, err := List(dialect)
	if err != nil {
		return 0, err
	}
	applied := 0
	for _, m := range ms {
		done, err := applyOne(ctx, db, m, placeholder, lock)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if done {
			applied++
		}
	}
	return applied, nil
}

func applyOne(ctx context.Context, db *sql.DB, m Migration, placeholder func(int) string, lock string) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if lock != "" {
		if _, err := tx.ExecContext(ctx, lock); err != nil {
			return false, fmt.Errorf("lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, createTable); err != nil {
		return false, err
	}
	var n int
	q := `SELECT count(*) FROM schema_migrations WHERE version = ` + placeholder(1)
	if err := tx.QueryRowContext(ctx, q, m.Version).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, err
	}
	ins := `INSERT INTO schema_migrations (version, applied_at) VALUES (` + placeholder(1) + `, CURRENT_TIMESTAMP)`
	if _, err := tx.ExecContext(ctx, ins, m.Version); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
